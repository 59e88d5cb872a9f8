/**
 * The latency proxy (bench/latency-proxy.ts) in a process of its own, so that its timers never
 * share an event loop with the code being timed: `latency-proxy.js TARGET_PORT RTT_MS`, on
 * 127.0.0.1. Sends `{ port }` over IPC once listening; closes on SIGTERM and exits when the
 * parent goes away.
 */
import { startLatencyProxy } from '../latency-proxy';

async function main() {
  const [targetPort, rtt] = process.argv.slice(2).map(Number);
  if (!targetPort || rtt === undefined || !Number.isFinite(rtt) || rtt < 0) throw new Error('usage: latency-proxy.js TARGET_PORT RTT_MS');
  const proxy = await startLatencyProxy({ host: '127.0.0.1', port: targetPort }, rtt);
  const close = () => void proxy.close().finally(() => process.exit(0));
  process.on('SIGTERM', close);
  process.on('disconnect', close); // the bench died without stopping us
  process.send!({ port: proxy.port });
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
