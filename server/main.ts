// `npm start`: a working, moderated media server on embedded defaults.
//   npm start -- --config server.yaml --demo --port 8080
// Dev mode (the default) prints ready-to-use tokens and links. SIGINT/SIGTERM shut down gracefully:
// clients told, sessions closed, audit and store writes flushed.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { buildServer, type Server } from './app.ts';
import { loadConfig, summarizeConfig, type Config } from './config.ts';
import { SrvError } from './errors.ts';

async function printDevAccess(server: Server, config: Config): Promise<void> {
  const a = server.auth;
  const ttl = '12h';
  const admin = await a.sign({ role: 'admin', sub: 'dev-admin' }, ttl);
  const reviewer = await a.sign({ role: 'reviewer', sub: 'dev-reviewer' }, ttl);
  const publish = await a.sign({ role: 'publisher', sub: 'dev-streamer', streamId: 'demo' }, ttl);
  const viewers = await Promise.all(
    ['SE', 'DE', 'SA'].map(
      async (j) => [j, await a.sign({ role: 'viewer', sub: `dev-viewer-${j}`, jurisdiction: j }, ttl)] as const,
    ),
  );
  const u = server.url;
  const lines = [
    '',
    `dev mode: tokens valid ${ttl}${config.authSecret ? '' : ' (random secret: they die with this process)'}`,
    `  ops console      ${u}/ops?token=${admin}`,
    `  publish (camera) ${u}/publish?stream=demo&token=${publish}`,
    ...viewers.map(([j, t]) => `  watch as ${j}      ${u}/watch?stream=demo&token=${t}`),
    `  WHIP endpoint    ${u}/whip/demo   (Authorization: Bearer <publish token>)`,
    `  admin token      ${admin}`,
    `  reviewer token   ${reviewer}`,
    `  publish token    ${publish}   (stream "demo")`,
    `  API docs         ${u}/openapi.json   metrics ${u}/metrics`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ argv: process.argv.slice(2) });
  } catch (err) {
    process.stderr.write(`${err instanceof SrvError ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    process.exit(2);
  }
  const server = await buildServer(config);
  // One stray rejection (a library's, or ours) must not drop every stream of this node: log it, count
  // it, keep running. (Node's default for an unhandled rejection is to exit.)
  process.on('unhandledRejection', (reason) => {
    server.app.log.error(
      { err: reason instanceof Error ? { message: reason.message, stack: reason.stack } : String(reason) },
      'unhandled promise rejection (logged; the server keeps running)',
    );
    server.metrics.recordUnhandledRejection();
  });
  const { port } = await server.listen();
  process.stdout.write(summarizeConfig(config, port, server.sfuSummary) + '\n');
  if (config.mode === 'dev') await printDevAccess(server, config);
  const demo = config.demo ? await startDemo(server) : undefined;
  process.stdout.write(`listening on ${server.url} (pid ${process.pid})\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.stderr.write(`${signal} again: exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`${signal}: shutting down (sessions closed, audit flushed)\n`);
    // A shutdown that hangs must still end the process.
    const watchdog = setTimeout(() => {
      process.stderr.write('shutdown took more than 15 s; exiting\n');
      process.exit(1);
    }, 15_000);
    watchdog.unref();
    void (async () => {
      try {
        await demo?.stop();
        await server.close();
        process.stdout.write('shutdown complete\n');
        process.exit(0);
      } catch (err) {
        process.stderr.write(`shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      }
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(
    `startup failed: ${err instanceof SrvError ? `${err.code}: ` : ''}${(err as Error).stack ?? String(err)}\n`,
  );
  process.exit(1);
});

/**
 * --demo: the synthetic demo streams (loadtest/demo.ts) in a child process that reaches this server
 * only through its public protocols, with tokens minted here (the dev secret may be random).
 */
async function startDemo(server: Server): Promise<{ stop(): Promise<void> }> {
  const sign = (claims: Parameters<typeof server.auth.sign>[0]) => server.auth.sign(claims, '24h');
  const jurisdictions = ['SE', 'DE', 'SA'];
  // The streams and viewer jurisdictions loadtest/demo.ts plays.
  const streams = ['demo-clean', 'demo-violating', 'demo-regional'];
  const tokens = {
    admin: await sign({ role: 'admin', sub: 'demo' }),
    publish: Object.fromEntries(
      await Promise.all(
        streams.map(
          async (streamId) => [streamId, await sign({ role: 'publisher', sub: `demo-${streamId}`, streamId })] as const,
        ),
      ),
    ),
    view: Object.fromEntries(
      await Promise.all(
        jurisdictions.map(
          async (jurisdiction) =>
            [jurisdiction, await sign({ role: 'viewer', sub: `demo-viewer-${jurisdiction}`, jurisdiction })] as const,
        ),
      ),
    ),
  };
  const script = fileURLToPath(new URL('../loadtest/demo.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, DEMO_URL: server.url, DEMO_TOKENS: JSON.stringify(tokens) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
