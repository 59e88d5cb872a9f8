import { getDeps } from './deps';
import { logger } from './http';
import { reconcile } from '../lib/sync';

/**
 * The scheduled anti-entropy pass (serverless.yml `schedule`). Never forced: if a guard trips
 * (a store down or empty, mass deletes) it logs and waits for a person to run `dfs sync --force`.
 */
export async function handler(): Promise<{ copies: number; deletes: number; failed: number }> {
  const report = await reconcile(getDeps(), {});
  const summary = { copies: report.counts.copies, deletes: report.counts.deletes, failed: report.applied?.failed.length ?? 0 };
  logger.info('reconcile done', summary);
  return summary;
}
