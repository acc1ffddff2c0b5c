// Spawns `models/inference-server.ts` as a child process (what `npm run inference-server` runs) and waits for
// its "listening" line.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface ServerProcess {
  child: ChildProcess;
  address: string;
  port: number;
  /** SIGKILL (no graceful shutdown), resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM, resolves when the process is gone. */
  stop(): Promise<void>;
}

export async function startInferenceServer(
  opts: { port?: number; models?: string[]; threads?: number; timeoutMs?: number } = {},
): Promise<ServerProcess> {
  // node --import tsx (one process) rather than the tsx CLI, which forks a second node that a kill would orphan.
  const args = [
    '--import',
    'tsx',
    path.join(ROOT, 'models', 'inference-server.ts'),
    '--host',
    '127.0.0.1',
    '--port',
    String(opts.port ?? 0),
    '--threads',
    String(opts.threads ?? 1),
  ];
  if (opts.models) args.push('--models', opts.models.join(','));
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`inference server did not start: ${stderr}`)),
      opts.timeoutMs ?? 120_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`inference server exited (${code}): ${stderr}`));
    });
  });
  const end = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  return {
    child,
    address,
    port: Number(address.split(':').pop()),
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  };
}
