// Loaded with --import before server/main.ts by test/server/resilience.test.ts: one promise rejection
// nobody handles, once the server says it is listening, as a library's stray throw would make.
const write = process.stdout.write.bind(process.stdout);
let fired = false;
process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
  if (!fired && String(chunk).includes('listening on')) {
    fired = true;
    setTimeout(() => void Promise.reject(new Error('stray rejection from a test')), 200);
  }
  return write(chunk, ...rest);
}) as typeof process.stdout.write;
