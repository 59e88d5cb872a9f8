import type { S3Flavor } from './config';
import { keyProblem } from './keys';
import type { Store } from './stores';
import type { ObjectEvent } from './replicate';

/** A record that cannot be acted on, with why; logged and skipped, never retried. */
export interface RejectedRecord {
  reason: string;
  record: unknown;
}

/**
 * Decodes an S3 event key. AWS URL-encodes keys in events with `+` for space; s3rver sends
 * them raw. The flavor comes from configuration: guessing would misread a real `+` or `%`.
 */
export function decodeEventKey(raw: string, flavor: S3Flavor): string {
  if (flavor === 's3rver') return raw;
  return decodeURIComponent(raw.replace(/\+/g, ' '));
}

interface S3Record {
  eventName?: unknown;
  eventTime?: unknown;
  userIdentity?: { principalId?: unknown };
  s3?: { bucket?: { name?: unknown }; object?: { key?: unknown; sequencer?: unknown; eTag?: unknown } };
}

/** Splits an S3 notification into events on known stores and records rejected with a reason. */
export function parseS3Event(
  event: unknown,
  stores: Store[],
  flavor: S3Flavor,
): { events: ObjectEvent[]; rejected: RejectedRecord[] } {
  const records = (event as { Records?: unknown })?.Records;
  if (!Array.isArray(records)) return { events: [], rejected: [{ reason: 'no Records array', record: event }] };
  const events: ObjectEvent[] = [];
  const rejected: RejectedRecord[] = [];
  for (const record of records as S3Record[]) {
    const reject = (reason: string) => rejected.push({ reason, record });
    const name = record?.eventName;
    const bucket = record?.s3?.bucket?.name;
    const rawKey = record?.s3?.object?.key;
    const time = typeof record?.eventTime === 'string' ? Date.parse(record.eventTime) : NaN;
    if (typeof name !== 'string' || typeof bucket !== 'string' || typeof rawKey !== 'string' || !Number.isFinite(time)) {
      reject('malformed record: eventName, eventTime, s3.bucket.name and s3.object.key are required');
      continue;
    }
    const kind = name.startsWith('ObjectCreated:') ? 'created' : name.startsWith('ObjectRemoved:') ? 'removed' : undefined;
    if (!kind) {
      reject(`event ${name} is neither ObjectCreated nor ObjectRemoved`);
      continue;
    }
    const store = stores.find((s) => s.bucket === bucket);
    if (!store) {
      reject(`bucket ${bucket} is not a configured store`);
      continue;
    }
    let key: string;
    try {
      key = decodeEventKey(rawKey, flavor);
    } catch {
      reject('key is not valid URL encoding');
      continue;
    }
    const problem = keyProblem(key);
    if (problem) {
      reject(`key refused: ${problem}`);
      continue;
    }
    const object = record.s3!.object!;
    // S3 gives every PUT and DELETE event a sequencer; without one, the event's time stands in.
    const seq = typeof object.sequencer === 'string' && /^[0-9A-Fa-f]{1,64}$/.test(object.sequencer) ? object.sequencer : time.toString(16);
    const etag = typeof object.eTag === 'string' && object.eTag !== '' ? object.eTag : undefined;
    const principal = record.userIdentity?.principalId;
    events.push({ store, key, kind, time, seq, name, ...(etag ? { etag } : {}), ...(typeof principal === 'string' && principal !== '' ? { principal } : {}) });
  }
  return { events, rejected };
}
