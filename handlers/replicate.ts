import { getDeps } from './deps';
import { logger } from './http';
import { parseS3Event } from '../lib/s3events';
import { replicateEvent, type ReplicationOutcome } from '../lib/replicate';
import type { Deps } from '../lib/deps';

/** Attempts per event inside one invocation, before Lambda's own async retries take over. */
const ATTEMPTS = 3;

/**
 * S3 ObjectCreated/ObjectRemoved on any store → the same change on every other store.
 * Bad records are logged and skipped; a store that cannot be reached makes the invocation
 * fail after a few quick retries, so Lambda retries it and finally sends it to the
 * on-failure destination (serverless.yml).
 */
export async function handleS3Event(deps: Deps, event: unknown): Promise<ReplicationOutcome[]> {
  const { events, rejected } = parseS3Event(event, deps.stores, deps.flavor);
  for (const r of rejected) logger.warn('skipped S3 record', { reason: r.reason, record: r.record as object });
  const outcomes: ReplicationOutcome[] = [];
  for (const ev of events) {
    let outcome = await replicateEvent(deps, ev);
    for (let attempt = 1; outcome.failed.length > 0 && attempt < ATTEMPTS; attempt++) {
      await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      outcome = await replicateEvent(deps, ev);
    }
    if (outcome.failed.length > 0) {
      throw new Error(`replication of ${ev.key} from ${ev.store.name} failed for ${outcome.failed.join(', ')}`);
    }
    outcomes.push(outcome);
  }
  return outcomes;
}

export const handler = (event: unknown) => handleS3Event(getDeps(), event);
