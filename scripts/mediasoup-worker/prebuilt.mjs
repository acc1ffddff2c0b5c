// Downloads mediasoup's prebuilt worker tarball to argv[2], computing the URL exactly as
// downloadPrebuiltWorker() in node_modules/mediasoup/npm-scripts.mjs does. Only the download is
// done here (that function also extracts into node_modules and runs tar/node-fetch); build.sh
// extracts and checks the binary. Exit 0 on success, 1 otherwise, within 20 s.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { createRequire } from 'node:module';

const out = process.argv[2];
const pkg = createRequire(import.meta.url)(`${process.cwd()}/node_modules/mediasoup/package.json`);

const releaseBase =
  process.env.MEDIASOUP_WORKER_PREBUILT_DOWNLOAD_BASE_URL ||
  `${pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')}/releases/download`;
let name = `mediasoup-worker-${pkg.version}-${os.platform()}-${os.arch()}`;
if (os.platform() === 'linux') name += `-kernel${Number(os.release().split('.')[0])}`;
const url = `${releaseBase}/${pkg.version}/${name}.tgz`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(20_000) });
  if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
  fs.writeFileSync(out, Buffer.from(await res.arrayBuffer()));
  console.log(`mediasoup-worker: downloaded ${url}`);
} catch (error) {
  const cause = error instanceof Error && error.cause ? ` (${error.cause})` : '';
  console.log(`mediasoup-worker: no prebuilt binary from ${url}: ${error}${cause}`);
  process.exit(1);
}
