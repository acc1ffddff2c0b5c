// The SFU of the stalled-event-loop test in a process of its own, so the test can stop its Node
// process (SIGSTOP: a long GC pause, a swap storm, a debugger) while its mediasoup workers run on.
// Forked by test/sfu/gate-stall.test.ts; IPC:
//   -> { type: 'ready', base }     listening
//   <- { type: 'blank' }           every viewer's video gate to blank -> { type: 'blanked' }

import { startServer } from './helpers.ts';

const srv = await startServer({ engine: 'mediasoup', sfu: { workers: 1 } });
await srv.sfu.slateReady;
process.on('message', (m: { type: string }) => {
  if (m.type !== 'blank') return;
  for (const s of srv.sfu.streams()) for (const v of s.viewers.values()) v.setVideoGate('blank');
  process.send?.({ type: 'blanked' });
});
process.on('disconnect', () => void srv.close().then(() => process.exit(0)));
process.send?.({ type: 'ready', base: srv.base });
