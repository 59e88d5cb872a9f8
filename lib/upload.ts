import { createHash } from 'node:crypto';
import { lookup } from 'mime-types';
import { z } from 'zod';
import type { Deps } from './deps';
import { BadRequestError, OverruledError, PayloadTooLargeError, StoreUnavailableError, UnknownStoreError } from './errors';
import { parseKey } from './keys';
import {
  abortUpload as abortOn,
  askEvery,
  bareEtag,
  completeUpload as completeOn,
  createUpload,
  describeFailure,
  headObject,
  presignPart,
  putObject,
  storeNamed,
  type ObjectHead,
  type Store,
} from './stores';
import { MAX_FUTURE_MS, META, newWriteId, parseRequestMtime, uploadMetadata, writeMetadata } from './stamps';
import { isDeadUnder, readTombstone } from './tombstones';
import { LockHeldError, locksOf } from './locks';
import { holdUpdate } from './queue';
import { isNewer } from './settle';
import { parseBody } from './validate';
import type { StoreOutcome, WriteAnswer, UploadPlan } from './types';

/** S3's multipart bounds (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). */
export const S3_LIMITS = Object.freeze({
  minPartSize: 5 * 1024 * 1024,
  maxPartSize: 5 * 1024 * 1024 * 1024,
  maxParts: 10_000,
  maxObjectSize: 5 * 1024 ** 4,
});

export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

/** Resolves `to=all|STORE` against the configured stores; throws UnknownStoreError. */
export function targetStores(stores: Store[], to: string | undefined): Store[] {
  if (to === undefined || to === 'all') return stores;
  const store = stores.find((s) => s.name === to);
  if (!store) throw new UnknownStoreError(`unknown store "${to}"; stores are: all, ${stores.map((s) => s.name).join(', ')}`);
  return [store];
}

/** The Content-Type a file is stored with, guessed from its name as S3's console would. */
export function contentTypeOf(key: string): string {
  return lookup(key) || 'application/octet-stream';
}

/**
 * Runs `write` on every target at once and reports each store's outcome; one store failing
 * never hides the others. A 404 is that store's answer too (NoSuchBucket, NoSuchUpload), not
 * a bug. Other errors (a bug) still propagate.
 */
async function onEach<T>(targets: Store[], write: (s: Store) => Promise<T>): Promise<(StoreOutcome & { value?: T; clientFault?: true })[]> {
  const settled = await Promise.allSettled(targets.map((s) => write(s)));
  return settled.map((r, i) => {
    const store = targets[i]!.name;
    if (r.status === 'fulfilled') return { store, ok: true, value: r.value };
    if (r.reason instanceof StoreUnavailableError) {
      const f = describeFailure(r.reason);
      return { store, ok: false, error: f.message, code: f.code, ...(f.clientFault ? { clientFault: true } : {}) };
    }
    throw r.reason;
  });
}


/** Per-store outcomes for the answer, each with the ETag S3 gave the write (or the queue entry that holds it). */
function withEtags(results: (StoreOutcome & { value?: string | { held: number }; clientFault?: true })[]): StoreOutcome[] {
  return results.map(({ value, clientFault: _, ...r }) =>
    typeof value === 'string' && value ? { ...r, etag: bareEtag(value) } : typeof value === 'object' ? { ...r, held: value.held } : r,
  );
}

/** The stores of an upload request, each named once; throws BadRequestError for a repeat. */
function uploadTargets(deps: Deps, uploads: { store: string }[]): Store[] {
  const names = uploads.map((u) => u.store);
  if (new Set(names).size !== names.length) throw new BadRequestError('each store may appear once in "uploads"');
  return names.map((n) => storeNamed(deps.stores, n));
}

/**
 * The live versions on the stores a write leaves out (none when it goes to every store): what
 * replication would weigh against it. A tombstone that cannot be read counts as none, so a
 * dead copy may count as live: the safe side for the check below.
 */
async function liveElsewhere(deps: Deps, key: string, targets: Store[]): Promise<ObjectHead[]> {
  const others = deps.stores.filter((s) => !targets.includes(s));
  if (others.length === 0) return [];
  const [{ answers }, tombstone] = await Promise.all([
    askEvery(others, (s) => headObject(s, key)),
    readTombstone(deps, key).catch((err) => {
      if (err instanceof StoreUnavailableError) return undefined;
      throw err;
    }),
  ]);
  return [...answers.values()].filter((h): h is ObjectHead => h !== null && !(h.stamp && isDeadUnder(tombstone, h.stamp.madeMs)));
}

/**
 * The mtime a version competes with: a version not stamped yet has its own mtime clamped as its
 * event will clamp it (to when it was made, here S3's LastModified, if more than 5 minutes ahead).
 */
function mtimeOnceStamped(h: ObjectHead): number {
  return h.stamp || h.mtimeMs <= h.lastModifiedMs + MAX_FUTURE_MS ? h.mtimeMs : h.lastModifiedMs;
}

/**
 * The mtime a write gets: `touch` makes it the newest (now, or just past a version elsewhere
 * dated ahead of now); otherwise its own, and a write that a newer live version elsewhere
 * would overrule is refused: replication would revert it within seconds, so it must not be
 * reported as stored.
 */
async function mtimeFor(deps: Deps, key: string, targets: Store[], input: { mtime?: string | number; touch?: boolean }, etag: string, now: number): Promise<number> {
  const others = await liveElsewhere(deps, key, targets);
  if (input.touch) return Math.max(now, ...others.map((h) => mtimeOnceStamped(h) + 1));
  const mtimeMs = parseRequestMtime(input.mtime, now);
  const newer = others.find((h) => isNewer({ ...h, mtimeMs: mtimeOnceStamped(h) }, { mtimeMs, etag }));
  if (newer) {
    const mtime = new Date(newer.mtimeMs).toISOString();
    throw new OverruledError(
      `${newer.store} holds a newer version (mtime ${mtime}) that replication would put back over this one; write to all stores, or touch the file to make it the newest`,
      { store: newer.store, mtime },
    );
  }
  return mtimeMs;
}

export interface PutInput {
  key: string;
  body: Buffer;
  to?: string;
  /** Decimal ms (x-dfs-mtime); absent or with `touch`, now. */
  mtime?: string;
  /** Make this write the newest: mtime = now, whatever the file says. */
  touch?: boolean;
  /** Who writes: recorded in the write's stamp. */
  who?: string;
  now?: number;
}

/**
 * Writes a small body to `to` (every store, or one and replication spreads it). Answers per
 * store; throws PayloadTooLargeError above `putInlineLimit` with a hint at the upload flow.
 */
export async function putFile(deps: Deps, input: PutInput): Promise<WriteAnswer> {
  const key = parseKey(input.key);
  const targets = targetStores(deps.stores, input.to);
  if (input.body.length > deps.putInlineLimit) {
    throw new PayloadTooLargeError(
      `body is ${input.body.length} bytes, over the inline limit of ${deps.putInlineLimit}; use POST /uploads (dfs put does so by itself)`,
    );
  }
  const now = input.now ?? Date.now();
  const mtimeMs = await mtimeFor(deps, key, targets, input, createHash('md5').update(input.body).digest('hex'), now);
  const who = input.who ?? 'api';
  const metadata = writeMetadata({ id: newWriteId(), madeMs: now, who }, mtimeMs);
  const locks = await locksOf(deps, key);
  const results = await onEach(targets, async (s) => {
    // Locked by someone else: the write is held in that lock's queue (lib/locks.ts).
    const lock = locks.get(s.name);
    if (lock && lock.holder !== who) {
      const n = await holdUpdate(deps, key, s.name, { kind: 'put-bytes', body: input.body, metadata, contentType: contentTypeOf(key) }, who);
      if (n !== undefined) return { held: n };
    }
    return putObject(s, key, input.body, { metadata, contentType: contentTypeOf(key) });
  });
  return {
    key,
    size: input.body.length,
    mtime: new Date(mtimeMs).toISOString(),
    results: withEtags(results),
  };
}

const startSchema = z.object({
  key: z.string(),
  size: z.number().int().min(0).max(S3_LIMITS.maxObjectSize),
  mtime: z.number().int().min(0).optional(),
  to: z.string().optional(),
  touch: z.boolean().optional(),
  partSize: z.number().int().min(S3_LIMITS.minPartSize).max(S3_LIMITS.maxPartSize).optional(),
});


/** The smallest part size that keeps the part count within S3's 10,000, never below 8 MiB. */
export function choosePartSize(size: number, requested?: number): number {
  const needed = Math.ceil(size / S3_LIMITS.maxParts);
  const partSize = requested ?? Math.max(DEFAULT_PART_SIZE, Math.ceil(needed / (1024 * 1024)) * 1024 * 1024);
  if (Math.max(1, Math.ceil(size / partSize)) > S3_LIMITS.maxParts) {
    throw new BadRequestError(`a part size of ${partSize} bytes needs more than ${S3_LIMITS.maxParts} parts for ${size} bytes`);
  }
  return partSize;
}

/**
 * Starts a multipart upload on every target. Stores that fail are reported in `failed`; the
 * upload goes on with the rest. Part URLs come from `signParts`, in batches, so a 10,000-part
 * upload never needs one huge answer.
 */
export async function startUpload(deps: Deps, body: unknown, who = 'api', now = Date.now()): Promise<UploadPlan> {
  const input = parseBody(startSchema, body);
  const key = parseKey(input.key);
  const targets = targetStores(deps.stores, input.to);
  const partSize = choosePartSize(input.size, input.partSize);
  // Its ETag is not known before the parts are: an equal mtime is left to newest-wins.
  const mtimeMs = await mtimeFor(deps, key, targets, input, '', now);
  const metadata = uploadMetadata(newWriteId(), who, mtimeMs);
  // A store locked by someone else gets no upload: replication holds the file in its queue once
  // it lands elsewhere. With no other target, the lock refuses it.
  const { locks, lockedOut } = await lockedOutOf(deps, key, targets, who);
  const results = await onEach(
    targets.filter((s) => !lockedOut.includes(s)),
    (s) => createUpload(s, key, metadata, contentTypeOf(key)),
  );
  for (const s of lockedOut) {
    const lock = locks.get(s.name)!;
    results.push({ store: s.name, ok: false, code: 'LockHeld', error: `locked by ${lock.holder} since ${lock.since}: held in the lock's queue once the upload lands on the other stores` });
  }
  return {
    key,
    size: input.size,
    mtime: new Date(mtimeMs).toISOString(),
    partSize,
    parts: Math.max(1, Math.ceil(input.size / partSize)),
    uploads: results.flatMap((r) => (r.ok && r.value ? [{ store: r.store, uploadId: r.value }] : [])),
    failed: results.filter((r) => !r.ok).map(({ value: _, ...r }) => r),
  };
}

const targetSchema = z.object({ store: z.string(), uploadId: z.string().min(1).max(1024) });
const signSchema = z.object({
  key: z.string(),
  // One upload per store at most: the URLs a request signs stay under 1,000 per store.
  uploads: z.array(targetSchema).min(1).max(16),
  parts: z.array(z.number().int().min(1).max(S3_LIMITS.maxParts)).min(1).max(1000),
});

/** Presigned PUT URLs for the given part numbers, per target: `urls[store][i]` is for `parts[i]`. */
export async function signParts(deps: Deps, body: unknown): Promise<{ urls: Record<string, string[]>; expires: string }> {
  const input = parseBody(signSchema, body);
  const key = parseKey(input.key);
  const urls: Record<string, string[]> = {};
  if (new Set(input.parts).size !== input.parts.length) throw new BadRequestError('each part number may appear once in "parts"');
  const stores = uploadTargets(deps, input.uploads);
  for (const [n, u] of input.uploads.entries()) {
    const store = stores[n]!;
    urls[u.store] = await Promise.all(input.parts.map((part) => presignPart(store, key, u.uploadId, part, deps.urlExpirySeconds)));
  }
  return { urls, expires: new Date(Date.now() + deps.urlExpirySeconds * 1000).toISOString() };
}

const completeSchema = z.object({
  key: z.string(),
  uploads: z
    .array(
      targetSchema.extend({
        parts: z.array(z.object({ n: z.number().int().min(1).max(S3_LIMITS.maxParts), etag: z.string().min(1) })).min(1).max(S3_LIMITS.maxParts),
      }),
    )
    .min(1),
});

/**
 * The targets locked by someone other than `who`; throws LockHeldError when that is all of them.
 * Such a store gets no upload: the file is held in its lock's queue once it lands elsewhere.
 */
async function lockedOutOf(deps: Deps, key: string, targets: Store[], who: string) {
  const locks = await locksOf(deps, key);
  const lockedOut = targets.filter((s) => locks.has(s.name) && locks.get(s.name)!.holder !== who);
  if (lockedOut.length === targets.length) {
    const lock = locks.get(lockedOut[0]!.name)!;
    throw new LockHeldError(lock.holder, lock.since, `${key} is locked at ${lock.store} by ${lock.holder} since ${lock.since}; upload to all stores, and it is held in the lock's queue`);
  }
  return { locks, lockedOut };
}

/**
 * Completes each target's upload; answers per store like putFile. A store locked since the
 * upload started (by someone other than `who`) is not completed: its upload is aborted and the
 * file, once on another store, is held in the lock's queue (the same entry its replication finds).
 */
export async function completeUpload(deps: Deps, body: unknown, who = 'api'): Promise<WriteAnswer> {
  const input = parseBody(completeSchema, body);
  const key = parseKey(input.key);
  const byStore = new Map(input.uploads.map((u) => [u.store, u]));
  const targets = uploadTargets(deps, input.uploads);
  const { lockedOut } = await lockedOutOf(deps, key, targets, who);
  const results: (StoreOutcome & { value?: string | { held: number }; clientFault?: true })[] = await onEach(
    targets.filter((s) => !lockedOut.includes(s)),
    (s) => {
      const u = byStore.get(s.name)!;
      return completeOn(s, key, u.uploadId, u.parts);
    },
  );
  // Refused everywhere for what the request said (a forged upload id, parts never sent): the
  // client's error, not the stores'.
  if (results.every((r) => r.clientFault)) {
    throw new BadRequestError(`the upload cannot be completed: ${[...new Set(results.map((r) => r.error))].join('; ')}`);
  }
  const landed = results.find((r) => r.ok && typeof r.value === 'string');
  for (const s of lockedOut) results.push({ store: s.name, ...(await holdCompleted(deps, key, s, byStore.get(s.name)!.uploadId, landed, who)) });
  return {
    key,
    results: withEtags(results),
  };
}

/** Aborts `locked`'s upload and holds the file that `landed` on another store in its lock's queue. */
async function holdCompleted(deps: Deps, key: string, locked: Store, uploadId: string, landed: { store: string; value?: unknown } | undefined, who: string) {
  await abortOn(locked, key, uploadId).catch(() => undefined); // no orphaned parts; S3's lifecycle rule catches a failure
  const from = landed && storeNamed(deps.stores, landed.store);
  const head = from && (await headObject(from, key).catch(() => null));
  // Replaced since it landed: the newer write's own replication decides what the lock holds.
  if (!from || !head?.stamp || bareEtag(head.etag) !== bareEtag(landed.value as string)) {
    return { ok: false as const, code: 'LockHeld', error: `locked since the upload started: not completed there; replication holds the file in the lock's queue` };
  }
  const n = await holdUpdate(deps, key, locked.name, { kind: 'put', from, head, metadata: { ...head.metadata, [META.replicaOf]: from.name } }, who);
  // Unlocked meanwhile: the file's own event on `from` copies it there.
  return n === undefined ? { ok: true as const } : { ok: true as const, value: { held: n } };
}

const abortSchema = z.object({ key: z.string(), uploads: z.array(targetSchema).min(1) });

/** Aborts each target's upload so no orphaned parts are billed; answers per store. */
export async function abortUpload(deps: Deps, body: unknown): Promise<WriteAnswer> {
  const input = parseBody(abortSchema, body);
  const key = parseKey(input.key);
  const ids = new Map(input.uploads.map((u) => [u.store, u.uploadId]));
  const targets = uploadTargets(deps, input.uploads);
  const results = await onEach(targets, (s) => abortOn(s, key, ids.get(s.name)!));
  if (results.every((r) => r.clientFault)) {
    throw new BadRequestError(`the upload cannot be aborted: ${[...new Set(results.map((r) => r.error))].join('; ')}`);
  }
  return { key, results: results.map(({ value: _, clientFault: __, ...r }) => r) };
}

