// A WHIP publisher or WHEP viewer in its own process, for tests that kill it with SIGKILL: a peer
// that vanishes without a DTLS close or a DELETE, as a crashed OBS or a closed laptop does.
//   node --import tsx test/sfu/vanishing-peer.ts '{"role":"publish","url":"http://127.0.0.1:PORT/whip/cam"}'
// Prints one JSON line ({"connected":true,"location":...}) once connected, then runs until killed.
import { WhipPublisher, syntheticClip } from '../../loadtest/clients/whip-publisher.ts';
import { WhepViewer } from '../../loadtest/clients/whep-viewer.ts';

const args = JSON.parse(process.argv[2] ?? '{}') as { role: 'publish' | 'view'; url: string; token?: string };
// bounded: a test that forgets this process still sees it end
setTimeout(() => process.exit(3), 120_000).unref();
if (args.role === 'publish') {
  const clip = await syntheticClip({ codec: 'VP8', width: 160, height: 120, seconds: 1 });
  const pub = await WhipPublisher.connect({ url: args.url, token: args.token, ...clip });
  pub.start();
  process.stdout.write(JSON.stringify({ connected: true, location: pub.location }) + '\n');
} else {
  const viewer = await WhepViewer.connect({ url: args.url, token: args.token });
  process.stdout.write(JSON.stringify({ connected: true, location: viewer.location }) + '\n');
}
setInterval(() => undefined, 1000);
