/**
 * `npm run soak -- --seeds 1000 [--from 1] [--parallel 3] [--scale 0.05]`: the delivery-fault
 * harness over many seeds, outside CI. Prints one line per failing seed with its schedule in
 * soak-failures/<seed>.txt, and a summary; exits 1 when any seed broke a rule.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runSeed } from './run';

async function main() {
  const { values } = parseArgs({
    options: { seeds: { type: 'string', default: '100' }, from: { type: 'string', default: '1' }, parallel: { type: 'string', default: '3' }, scale: { type: 'string', default: '0.05' } },
  });
  const [n, from, parallel, scale] = [Number(values.seeds), Number(values.from), Number(values.parallel), Number(values.scale)];
  if (![n, from, parallel, scale].every((x) => Number.isFinite(x) && x > 0)) throw new Error('--seeds, --from, --parallel and --scale take positive numbers');
  const started = Date.now();
  let failing = 0;
  let done = 0;
  let next = from;
  const totals = { ops: 0, deliveries: 0, failedToQueue: 0, replayed: 0, locks: 0, forcedUnlocks: 0, heldUpdates: 0, appliedUpdates: 0, racedLockWrites: 0 };
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let seed = next++; seed < from + n; seed = next++) {
        try {
          const r = await runSeed({ seed, scale });
          for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.stats[k] ?? 0;
          totals.racedLockWrites += r.racedLockWrites.length;
          const bad = r.violations.length + r.lockViolations.length + r.overCopied.length + r.leftover.length;
          if (bad > 0) {
            failing++;
            mkdirSync('soak-failures', { recursive: true });
            writeFileSync(`soak-failures/${seed}.txt`, `${JSON.stringify({ violations: r.violations, lockViolations: r.lockViolations, overCopied: r.overCopied, leftover: r.leftover }, null, 1)}\n${r.schedule()}\n`);
            console.log(`seed ${seed}: ${bad} fault(s), see soak-failures/${seed}.txt`);
          }
        } catch (err) {
          failing++;
          console.log(`seed ${seed}: run failed: ${(err as Error).message}`);
        }
        done++;
        if (done % 10 === 0) console.log(`${done}/${n} seeds, ${failing} failing, ${Math.round((Date.now() - started) / 1000)} s`);
      }
    }),
  );
  console.log(JSON.stringify({ seeds: n, from, failing, seconds: Math.round((Date.now() - started) / 1000), ...totals }));
  process.exitCode = failing > 0 ? 1 : 0;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 2;
});
