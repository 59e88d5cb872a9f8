/**
 * The benchmarks' S3: s3rver on 127.0.0.1 and a free port, serving DIR, in a process of its
 * own so that its work never shares an event loop with the code being timed. Sends
 * `{ port }` over IPC once listening; closes on SIGTERM and exits when the parent goes away.
 */
// s3rver ships no types.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const S3rver = require('s3rver');

async function main() {
  const directory = process.argv[2];
  if (!directory) throw new Error('usage: s3rver.js DIR');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
  const { port } = (await server.run()) as { port: number };
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    await server.close();
    process.exit(0);
  };
  process.on('SIGTERM', close);
  process.on('disconnect', close); // the bench died without stopping us
  process.send!({ port });
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
