import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import type { Deps } from './deps';
import { StoreUnavailableError } from './errors';
import { ChangedWhileReadingError, cheapVerdict, compareBytes } from './compare';
import { bareEtag, headObject, isMissing, onStore, type ObjectHead, type Store } from './stores';
import { appendEvent } from './journal';
import { readTombstone, writeTombstone } from './tombstones';

/*
 * Replication, one S3 event at a time. The loop guard, for a write W on server1 with N stores:
 *
 *   server1 ← W (user)      event → copy W to server2..N, each copy tagged
 *                                   dfs-replica-of=server1, dfs-source-etag=ETag(W)
 *   serverK ← copy of W     event → every peer already holds W's bytes → no-op
 *                                   (a peer without it deleted it since → no-op as well)
 *
 * so one write costs N-1 copies and N-1 no-op events, whatever the interleaving: an event
 * never writes a copy its target already equals, and never overwrites a newer one.
 * "Newer" is (logical mtime, then ETag) so every event decides ties the same way.
 * When W is older than a peer's version P (an older write landed last), P is copied back
 * over W instead: one copy, whose event finds every peer equal.
 */

export const REPLICA_OF = 'dfs-replica-of';
export const SOURCE_ETAG = 'dfs-source-etag';
const MAX_COPY_OBJECT = 5 * 1024 ** 3;


/** Total order on versions: later logical mtime wins, ties broken by ETag so all agree. */
export function isNewer(a: Pick<ObjectHead, 'mtimeMs' | 'etag'>, b: Pick<ObjectHead, 'mtimeMs' | 'etag'>): boolean {
  return a.mtimeMs !== b.mtimeMs ? a.mtimeMs > b.mtimeMs : bareEtag(a.etag) > bareEtag(b.etag);
}

/** True when `b` is known to hold `a`'s bytes (or the reverse) without reading a body. */
export function knownEqual(a: ObjectHead, b: ObjectHead): boolean | undefined {
  if (b.metadata[SOURCE_ETAG] === bareEtag(a.etag) || a.metadata[SOURCE_ETAG] === bareEtag(b.etag)) {
    if (a.size === b.size) return true;
  }
  const v = cheapVerdict(a, b);
  return v ? v.same : undefined;
}

/** What to do with one target, and why, in rclone's manner. */
export type CopyDecision =
  | { copy: true; reason: string }
  | { copy: false; action: 'skip' | 'conflict'; reason: string };

export async function decideCopy(
  deps: Pick<Deps, 'stores' | 'compareChunkBytes' | 'meter'>,
  key: string,
  src: ObjectHead,
  dst: ObjectHead | null,
  target: string,
): Promise<CopyDecision> {
  if (!dst) return { copy: true, reason: `missing on ${target}` };
  const equal = knownEqual(src, dst);
  if (equal) return { copy: false, action: 'skip', reason: `${dst.store} already equal` };
  if (isNewer(dst, src)) {
    return { copy: false, action: 'conflict', reason: `${dst.store} newer (${iso(dst.mtimeMs)} vs ${iso(src.mtimeMs)})` };
  }
  if (equal === undefined && src.size === dst.size && (await compareBytes(deps, key, src, dst)).same) {
    return { copy: false, action: 'skip', reason: `${dst.store} already equal (compared bytes)` };
  }
  return { copy: true, reason: `${src.store} newer (${iso(src.mtimeMs)} vs ${iso(dst.mtimeMs)})` };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** CopySource is URL-encoded on AWS; s3rver decodes it with decodeURI, which spares reserved characters. */
function copySource(deps: Pick<Deps, 'flavor'>, bucket: string, key: string): string {
  const encoded = deps.flavor === 's3rver' ? encodeURI(key) : key.split('/').map(encodeURIComponent).join('/');
  return `${bucket}/${encoded}`;
}

/**
 * Copies `src` (as HEADed on `from`) over `to`'s copy, which must still be `dstEtag` (or
 * absent when null): a conditional write, so a newer write that lands meanwhile on `to` wins
 * and this copy fails with 412 instead of overwriting it. Same-endpoint copies up to 5 GiB
 * stay inside S3 (on s3rver, only onto a key that is free); others stream through this
 * process with bounded memory.
 */
export async function copyObject(
  deps: Pick<Deps, 'flavor'>,
  from: Store,
  to: Store,
  key: string,
  src: ObjectHead,
  dstEtag: string | null,
): Promise<void> {
  const Metadata = { ...src.metadata, mtime: String(src.mtimeMs), [REPLICA_OF]: from.name, [SOURCE_ETAG]: bareEtag(src.etag) };
  const condition = dstEtag ? { IfMatch: dstEtag } : { IfNoneMatch: '*' };
  // s3rver's CopyObject with MetadataDirective REPLACE rewrites the body and metadata but not
  // the MD5 it stores beside them, so a copy over an existing object would keep the old
  // content's ETag (and every later compare would call equal copies different). There we
  // stream instead: a PUT stores a fresh MD5.
  const staleEtag = deps.flavor === 's3rver' && dstEtag !== null;
  if (from.s3 === to.s3 && src.size <= MAX_COPY_OBJECT && !staleEtag) {
    await onStore(to, () =>
      to.s3.send(
        new CopyObjectCommand({
          Bucket: to.bucket,
          Key: key,
          CopySource: copySource(deps, from.bucket, key),
          CopySourceIfMatch: src.etag,
          MetadataDirective: 'REPLACE',
          Metadata,
          ...(src.contentType ? { ContentType: src.contentType } : {}),
          ...condition,
        }),
      ),
    );
    return;
  }
  const got = await onStore(from, () => from.s3.send(new GetObjectCommand({ Bucket: from.bucket, Key: key, IfMatch: src.etag })));
  await onStore(to, () =>
    new Upload({
      client: to.s3,
      params: { Bucket: to.bucket, Key: key, Body: got.Body as Readable, Metadata, ContentType: src.contentType, ...condition },
      queueSize: 2,
      partSize: 16 * 1024 * 1024,
    }).done(),
  );
}

/** One object event, decoded and matched to its store. */
export interface ObjectEvent {
  store: Store;
  key: string;
  kind: 'created' | 'removed';
  /** The event's time, ms: for deletes, the deletion time tombstones and peers are compared with. */
  time: number;
}

export interface ReplicationOutcome {
  /** Stores written to: peers given the event's version, or the event's store given a newer peer's. */
  copied: string[];
  deleted: string[];
  skipped: string[];
  /**
   * Stores that could not be reached, or whose copy (or the source) changed between our HEAD
   * and our conditional write (412, or 404 when it vanished): the event must be retried, and
   * the retry decides again from fresh HEADs.
   */
  failed: string[];
}

/**
 * Applies one event to every other store and journals each step. Idempotent: replaying an
 * event finds peers equal and does nothing. Targets that fail are in `failed`; the caller
 * throws so that Lambda retries the whole event.
 */
export async function replicateEvent(deps: Deps, ev: ObjectEvent): Promise<ReplicationOutcome> {
  return ev.kind === 'created' ? replicateWrite(deps, ev) : replicateDelete(deps, ev);
}

/**
 * Worth another attempt: the store did not answer (or refused a condition, which onStore
 * reports the same way), an object we had just HEADed was gone when we wrote (S3 answers a
 * conditional copy or delete with 404 NoSuchKey then, not 412), or a copy changed while its
 * bytes were being compared.
 */
const retryable = (err: unknown) =>
  err instanceof StoreUnavailableError || err instanceof ChangedWhileReadingError || isMissing(err);

async function replicateWrite(deps: Deps, ev: ObjectEvent): Promise<ReplicationOutcome> {
  const out: ReplicationOutcome = { copied: [], deleted: [], skipped: [], failed: [] };
  const src = await headObject(ev.store, ev.key);
  if (!src) {
    await appendEvent(deps, { action: 'skip', key: ev.key, from: ev.store.name, reason: 'gone since the event (a later delete replicates itself)' });
    return out;
  }
  const peers = deps.stores.filter((s) => s !== ev.store);
  // Read at most once, and only when a peer lacks the key: was it deleted after this write?
  let deletedLater: Promise<boolean> | undefined;
  const isDeletedLater = () =>
    (deletedLater ??= readTombstone(deps, ev.key).then(
      // LastModified has one-second resolution: only a delete clearly after the write counts.
      (t) => t !== undefined && t.time > src.writtenMs + 1000,
    ));
  await Promise.all(
    peers.map(async (to) => {
      try {
        const dst = await headObject(to, ev.key);
        if (!dst && (await isDeletedLater())) {
          // The event of a write that a later delete overtook: that delete's own event removes
          // this copy; copying it to the peer would bring the deleted file back.
          out.skipped.push(to.name);
          await appendEvent(deps, { action: 'skip', key: ev.key, from: ev.store.name, to: [to.name], reason: 'deleted after this write' });
          return;
        }
        if (!dst && src.metadata[REPLICA_OF] !== undefined) {
          // A copy's event never fills a gap. The write it copies goes to every store from its
          // own event, so a store without it lost it to a delete since, whose event removes this
          // copy too. Copying it back would undo that delete, and with the delete's event running
          // at the same time the two chase each other from store to store.
          out.skipped.push(to.name);
          return;
        }
        const d = await decideCopy(deps, ev.key, src, dst, to.name);
        if (!d.copy && d.action === 'conflict') {
          // The peer holds a newer version than the one this event is about (an older write
          // landed last). Newest wins both ways: no other event would ever bring the peer's
          // version here, so copy it back, unless this store changed since our HEAD.
          await copyObject(deps, to, ev.store, ev.key, dst!, src.etag);
          out.copied.push(ev.store.name);
          await appendEvent(deps, { action: 'replicate', key: ev.key, from: to.name, to: [ev.store.name], reason: d.reason });
          return;
        }
        if (!d.copy) {
          out.skipped.push(to.name);
          // A no-op for a copy we made ourselves is the loop guard at work, not news.
          if (src.metadata[REPLICA_OF] === undefined) {
            await appendEvent(deps, { action: d.action, key: ev.key, from: ev.store.name, to: [to.name], reason: d.reason });
          }
          return;
        }
        await copyObject(deps, ev.store, to, ev.key, src, dst ? dst.etag : null);
        out.copied.push(to.name);
        await appendEvent(deps, {
          action: 'replicate',
          key: ev.key,
          from: ev.store.name,
          to: [to.name],
          reason: dst ? 'modified' : 'created',
        });
      } catch (err) {
        if (!retryable(err)) throw err;
        out.failed.push(to.name);
      }
    }),
  );
  return out;
}

/** How far a delete event's time may be from the moment replication made that delete. */
export const ECHO_WINDOW_MS = 5000;

/*
 * Deletes, and their echoes:
 *
 *   user deletes K on server1 at t0   event → tombstone {time: t0, echoes: {server2: t1}},
 *                                             then server2's K deleted at ≈ t1
 *   server2's K removed at t1          event → tombstone names server2 at ≈ t1: our own echo,
 *                                             no-op (not a new delete dated t1, which would
 *                                             take a write made on server1 between t0 and t1)
 */
async function replicateDelete(deps: Deps, ev: ObjectEvent): Promise<ReplicationOutcome> {
  const out: ReplicationOutcome = { copied: [], deleted: [], skipped: [], failed: [] };
  const peerNames = deps.stores.filter((s) => s !== ev.store).map((s) => s.name);
  const prior = await readTombstone(deps, ev.key);
  const echoAt = prior?.echoes?.[ev.store.name];
  if (echoAt !== undefined && Math.abs(ev.time - echoAt) <= ECHO_WINDOW_MS) {
    out.skipped.push(...peerNames);
    return out;
  }
  if (await headObject(ev.store, ev.key)) {
    out.skipped.push(...peerNames);
    return out; // re-created since: its own created event replicates it
  }
  const peers = deps.stores.filter((s) => s !== ev.store);
  const targets: { to: Store; dst: ObjectHead }[] = [];
  await Promise.all(
    peers.map(async (to) => {
      try {
        const dst = await headObject(to, ev.key);
        if (!dst) {
          out.skipped.push(to.name);
        } else if (dst.writtenMs > ev.time) {
          out.skipped.push(to.name);
          await appendEvent(deps, {
            action: 'conflict',
            key: ev.key,
            from: ev.store.name,
            to: [to.name],
            reason: `${to.name} written after the delete (${iso(dst.writtenMs)} vs ${iso(ev.time)}): kept`,
          });
        } else targets.push({ to, dst });
      } catch (err) {
        if (!retryable(err)) throw err;
        out.failed.push(to.name);
      }
    }),
  );
  const now = Date.now();
  await writeTombstone(deps, {
    key: ev.key,
    time: ev.time,
    who: `${ev.store.name} (event)`,
    echoes: Object.fromEntries(targets.map(({ to }) => [to.name, now])),
  });
  await Promise.all(
    targets.map(async ({ to, dst }) => {
      try {
        await onStore(to, () => to.s3.send(new DeleteObjectCommand({ Bucket: to.bucket, Key: ev.key, IfMatch: dst.etag })));
        out.deleted.push(to.name);
        await appendEvent(deps, { action: 'delete', key: ev.key, from: ev.store.name, to: [to.name], reason: 'deleted' });
      } catch (err) {
        if (!retryable(err)) throw err;
        out.failed.push(to.name);
      }
    }),
  );
  return out;
}
