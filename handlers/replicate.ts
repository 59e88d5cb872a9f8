import { getDeps } from './deps';
import { logger } from './http';
import { replicateNotification } from '../lib/replicate';

/**
 * S3 ObjectCreated/ObjectRemoved on any store → the same change on every other store
 * (lib/replicate.ts). Bad records are logged and skipped; a store that cannot be reached makes
 * the invocation fail, so Lambda retries it and finally sends it to the on-failure destination,
 * which reconcile replays (lib/failures.ts).
 */
export const handler = (event: unknown) =>
  replicateNotification(getDeps(), event, {
    onRejected: (r) => logger.warn('skipped S3 record', { reason: r.reason, record: r.record as object }),
  });
