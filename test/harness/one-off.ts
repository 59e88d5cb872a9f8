/** `tsx test/harness/one-off.ts SEED`: one delivery-fault run, its result as JSON, its schedule when it broke a rule. */
import { runSeed } from './run';

(async () => {
  const seed = Number(process.argv[2] ?? 1);
  const started = Date.now();
  const r = await runSeed({ seed });
  console.log(JSON.stringify({ seed, ms: Date.now() - started, stores: r.stores, stats: r.stats, violations: r.violations, lockViolations: r.lockViolations, racedLockWrites: r.racedLockWrites, overCopied: r.overCopied, leftover: r.leftover }, null, 1));
  if (r.violations.length || r.lockViolations.length || r.overCopied.length || r.leftover.length) console.log(r.schedule());
})();
