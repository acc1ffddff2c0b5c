// Helpers for the third-party client tests: run a client program as a child process (bounded in time,
// ended by its pid), and decode what a WHEP viewer received.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { FF_DECODER_OPUS } from 'node-av';
import { decodeWith } from '../sfu/helpers.ts';

export interface ClientProcess {
  child: ChildProcess;
  /** JSON events the client printed, in order. */
  events: Record<string, unknown>[];
  stderr: () => string;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
  /** Ends the process (SIGKILL by pid) if it still runs. */
  kill(): void;
}

/** Starts `node --import tsx <script> ...args`; it is killed after `limitMs` whatever it does. */
export function startClient(script: string, args: string[], limitMs: number): ClientProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Record<string, unknown>[] = [];
  let stderr = '';
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        stderr += `${line}\n`;
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 20_000) stderr += d.toString();
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const timer = setTimeout(kill, limitMs);
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  return { child, events, stderr: () => stderr, exited, kill };
}

/** Decodes Opus packets (48 kHz) with FFmpeg; returns the decoded sample count per channel and the RMS level. */
export function decodeOpus(packets: Uint8Array[]): { samples: number; rms: number } {
  let samples = 0;
  let sumSq = 0;
  let n = 0;
  decodeWith(
    FF_DECODER_OPUS,
    packets,
    (frame) => {
      samples += frame.nbSamples;
      // planar float (fltp): the first channel's plane
      const plane = frame.data?.[0];
      if (!plane) return;
      const f = new Float32Array(plane.buffer, plane.byteOffset, Math.min(frame.nbSamples, plane.byteLength >> 2));
      for (const x of f) {
        sumSq += x * x;
        n++;
      }
    },
    (ctx) => (ctx.sampleRate = 48000),
  );
  return { samples, rms: n > 0 ? Math.sqrt(sumSq / n) : 0 };
}
