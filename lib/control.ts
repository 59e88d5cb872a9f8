import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ObjectChangedError, StoreUnavailableError } from './errors';
import { isMissing } from './stores';

/*
 * The control bucket holds the system's own records (tombstones, journal, locks) as small JSON
 * objects. Records shared by concurrent writers change only by conditional writes: created with
 * If-None-Match: *, replaced with If-Match on the ETag that was read, so two writers never both
 * win and nothing is overwritten unseen. Failures follow the store adapter's contract: missing →
 * null, a failed condition → ObjectChangedError, anything else → StoreUnavailableError('control').
 */

export interface ControlBucket {
  bucket: string;
  s3: S3Client;
}

export interface StoredRecord<T> {
  value: T;
  etag: string;
}

const NAME = 'control';

function translate(key: string, err: unknown): Error {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  if (e?.name === 'PreconditionFailed' || status === 412 || e?.name === 'ConditionalRequestConflict') return new ObjectChangedError(NAME, key, { cause: err });
  return new StoreUnavailableError(NAME, { cause: err });
}

/** The JSON record at `key` with its ETag, or null when there is none. */
export async function readRecord<T>(c: ControlBucket, key: string): Promise<StoredRecord<T> | null> {
  try {
    const res = await c.s3.send(new GetObjectCommand({ Bucket: c.bucket, Key: key }));
    const text = await res.Body!.transformToString();
    return { value: JSON.parse(text) as T, etag: res.ETag ?? '' };
  } catch (err) {
    if (isMissing(err)) return null;
    // A record that is not JSON (SyntaxError) is a broken control bucket: unavailable, not missing.
    throw translate(key, err);
  }
}

/**
 * Writes `value` at `key`: only if absent (`etag` null), or only if still `etag`. Returns the
 * new ETag; throws ObjectChangedError when another writer got there first.
 */
export async function writeRecord<T>(c: ControlBucket, key: string, value: T, etag: string | null): Promise<string> {
  try {
    const res = await c.s3.send(
      new PutObjectCommand({
        Bucket: c.bucket,
        Key: key,
        Body: JSON.stringify(value),
        ContentType: 'application/json',
        ...(etag === null ? { IfNoneMatch: '*' } : { IfMatch: etag }),
      }),
    );
    return res.ETag ?? '';
  } catch (err) {
    // If-Match on a record deleted meanwhile answers 404: changed too.
    if (isMissing(err)) throw new ObjectChangedError(NAME, key, { cause: err });
    throw translate(key, err);
  }
}

/** Sentinel an update function returns to leave the record as it is. */
export const UNCHANGED = Symbol('unchanged');

/** Conditional writes lost to other writers before updateRecord gives up (ObjectChangedError). */
export const UPDATE_ATTEMPTS = 20;
/** Times the bucket may not answer an update before updateRecord gives up (StoreUnavailableError). */
const UNANSWERED_ATTEMPTS = 3;
/**
 * The pause after the n-th failed attempt (a lost write, or no answer) is random up to min(PAUSE_CAP_MS, PAUSE_BASE_MS × 2^n)
 * ("full jitter"): a pause that grows lets a writer that keeps losing to a crowd of others find
 * the record quiet (soak seed 41069 lost 20 writes in a row with pauses that grew by 10 ms).
 */
const PAUSE_BASE_MS = 5;
const PAUSE_CAP_MS = 250;

export const pauseBeforeRetry = (attempt: number) => Math.random() * Math.min(PAUSE_CAP_MS, PAUSE_BASE_MS * 2 ** attempt);

/**
 * Read-modify-write of one record: `change` gets the current value (undefined when absent) and
 * returns the new one, or UNCHANGED. Retried from a fresh read whenever another writer wins
 * the conditional write (up to `attempts` writes), so `change` must be a pure function of what
 * it is given. Returns the value now stored (or found, when unchanged).
 */
export async function updateRecord<T>(
  c: ControlBucket,
  key: string,
  change: (current: T | undefined) => T | typeof UNCHANGED,
  { attempts = UPDATE_ATTEMPTS }: { attempts?: number } = {},
): Promise<T | undefined> {
  let unanswered = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      const current = await readRecord<T>(c, key);
      const next = change(current?.value);
      if (next === UNCHANGED) return current?.value;
      await writeRecord(c, key, next, current ? current.etag : null);
      return next;
    } catch (err) {
      // Contention on one record: a random pause lets the other writers finish. The bucket
      // not answering is tried again too: a write that did go through shows in the next read,
      // and the change is decided again from it.
      const retry = err instanceof ObjectChangedError ? attempt < attempts : err instanceof StoreUnavailableError && ++unanswered < UNANSWERED_ATTEMPTS;
      if (!retry) throw err;
      await new Promise((r) => setTimeout(r, pauseBeforeRetry(attempt)));
    }
  }
}

/** Writes a record that no one else writes (a journal entry): created, never replaced. */
export async function createRecord<T>(c: ControlBucket, key: string, value: T): Promise<void> {
  await writeRecord(c, key, value, null);
}

/** Deletes a record (absent already is fine). */
export async function deleteRecord(c: ControlBucket, key: string): Promise<void> {
  try {
    await c.s3.send(new DeleteObjectCommand({ Bucket: c.bucket, Key: key }));
  } catch (err) {
    throw translate(key, err);
  }
}

/** Keys and LastModified under `prefix`, in key order, after `startAfter`, page by page. */
export async function* listRecords(
  c: ControlBucket,
  prefix: string,
  opts: { startAfter?: string; max?: number } = {},
): AsyncGenerator<{ key: string; lastModifiedMs: number }> {
  let token: string | undefined;
  let left = opts.max ?? Infinity;
  do {
    let page;
    try {
      page = await c.s3.send(
        new ListObjectsV2Command({
          Bucket: c.bucket,
          Prefix: prefix,
          MaxKeys: Math.min(1000, left),
          ...(token ? { ContinuationToken: token } : opts.startAfter ? { StartAfter: opts.startAfter } : {}),
        }),
      );
    } catch (err) {
      throw translate(prefix, err);
    }
    for (const o of page.Contents ?? []) {
      left--;
      yield { key: o.Key!, lastModifiedMs: o.LastModified?.getTime() ?? 0 };
    }
    token = page.IsTruncated && left > 0 ? page.NextContinuationToken : undefined;
  } while (token);
}
