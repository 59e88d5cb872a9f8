import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Deps } from './deps';
import { isMissing } from './stores';

/**
 * A tombstone says "KEY was deleted at TIME by WHO". Reconcile uses it to tell a file deleted on
 * one store from a file created on another while the first was away: a copy newer than the
 * tombstone survives, an older one is deleted.
 */
export interface Tombstone {
  key: string;
  /** Deletion time, ms since 1970. */
  time: number;
  who: string;
  /**
   * Stores whose copy replication deleted to carry this delete out, with when (ms): their
   * own delete events are echoes, not new deletes (lib/replicate.ts).
   */
  echoes?: Record<string, number>;
}

const PREFIX = 'tombstones/';

// The store key itself is the object name under the prefix: keys are already valid S3 keys.
const objectKey = (key: string) => PREFIX + key;

export async function writeTombstone(deps: Pick<Deps, 'control'>, t: Tombstone): Promise<void> {
  await deps.control.s3.send(
    new PutObjectCommand({
      Bucket: deps.control.bucket,
      Key: objectKey(t.key),
      Body: JSON.stringify(t),
      ContentType: 'application/json',
    }),
  );
}

/** The tombstone of `key`, or undefined when it was never deleted through the API. */
export async function readTombstone(deps: Pick<Deps, 'control'>, key: string): Promise<Tombstone | undefined> {
  try {
    const res = await deps.control.s3.send(new GetObjectCommand({ Bucket: deps.control.bucket, Key: objectKey(key) }));
    return JSON.parse(await res.Body!.transformToString()) as Tombstone;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/**
 * Every tombstone's key and time. The time is read from the listing's LastModified (the moment
 * the tombstone was written), so listing 100k tombstones costs 100 requests, not 100k. That is
 * an upper bound of the deletion time: replication writes a tombstone when it handles the
 * delete's event, after the delete; readTombstone has the exact time.
 */
export async function* listTombstones(deps: Pick<Deps, 'control'>): AsyncGenerator<Pick<Tombstone, 'key' | 'time'>> {
  let token: string | undefined;
  do {
    const page = await deps.control.s3.send(
      new ListObjectsV2Command({ Bucket: deps.control.bucket, Prefix: PREFIX, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) yield { key: o.Key!.slice(PREFIX.length), time: o.LastModified?.getTime() ?? 0 };
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}
