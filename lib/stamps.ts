import { randomBytes } from 'node:crypto';
import { BadRequestError } from './errors';

/*
 * What every version in a store carries, in its user metadata (x-amz-meta-*):
 *
 *   mtime           the file's modification time, in rclone's format (seconds since 1970 with
 *                   up to nine decimals, trailing zeros dropped: "1705309200.123"), so rclone and
 *                   s3-dfs read each other's files. Decides between live versions (newest wins).
 *   dfs-made        when the write entered the system, ms, on a clock the system owns: the API's
 *                   for API writes, S3's event time for direct bucket writes and for multipart
 *                   uploads (made when they complete). Decides against deletes, never mtime.
 *   dfs-id          the write's identity: every copy of one write carries the same id.
 *   dfs-who         who made the write: a user's name, or `<store> (direct)` for bucket writes.
 *   dfs-replica-of  only on copies replication made: the store it was copied from.
 *   dfs-seq         on a version stamped from its S3 event: that event's sequencer (see
 *                   lib/replicate.ts adoptionFor).
 *
 * A version is *stamped* once it has dfs-made and dfs-id; copies carry the stamp of the write
 * they copy, so no decision ever uses a copy's own LastModified.
 */
export const META = Object.freeze({
  mtime: 'mtime',
  made: 'dfs-made',
  id: 'dfs-id',
  who: 'dfs-who',
  replicaOf: 'dfs-replica-of',
  /** On a version stamped from its S3 event: that event's sequencer. */
  seq: 'dfs-seq',
});

/** The identity and made-at time of a write, as its versions carry it. */
export interface Stamp {
  id: string;
  madeMs: number;
  who: string;
}

/** The largest time a JS Date can hold: anything beyond is garbage, not the future. */
export const MAX_DATE_MS = 8.64e15;

/** How far ahead of the clock that stamps it an mtime may be: the API refuses more, adoption clamps. */
export const MAX_FUTURE_MS = 5 * 60_000;

/**
 * Our own earlier format was whole milliseconds without a point. rclone writes seconds, which stay
 * below 1e11 until the year 5138, while milliseconds pass 1e11 in March 1973: a whole number at
 * or above it is milliseconds.
 */
const LEGACY_MS_FROM = 1e11;

/** `ms` in rclone's mtime format: seconds, a point and the fraction without trailing zeros. */
export function formatMtime(ms: number): string {
  const whole = Math.floor(ms);
  const seconds = Math.floor(whole / 1000);
  const fraction = String(whole - seconds * 1000).padStart(3, '0').replace(/0+$/, '');
  return fraction ? `${seconds}.${fraction}` : String(seconds);
}

/**
 * Reads an mtime: rclone's seconds with an optional fraction (nanoseconds are cut to ms), or our
 * old whole milliseconds. Undefined for anything else (zero, negative, exponent, hex, too large).
 */
export function parseMtime(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^(\d{1,16})(?:\.(\d{1,9}))?$/.exec(raw.trim());
  if (!m) return undefined;
  const whole = Number(m[1]);
  const ms = m[2] === undefined && whole >= LEGACY_MS_FROM ? whole : whole * 1000 + Number(m[2]?.padEnd(3, '0').slice(0, 3) ?? 0);
  // 0 is what tools write for "unknown", not a file from 1970.
  return ms > 0 && ms <= MAX_DATE_MS ? ms : undefined;
}

/** A fresh write identity: 96 random bits, hex. */
export const newWriteId = () => randomBytes(12).toString('hex');

/** The stamp a version carries, or undefined when it has none (written straight into a bucket). */
export function stampOf(metadata: Record<string, string>): Stamp | undefined {
  const id = metadata[META.id];
  const made = metadata[META.made];
  if (!id || !made || !/^\d{1,16}$/.test(made)) return undefined;
  const madeMs = Number(made);
  if (madeMs > MAX_DATE_MS) return undefined;
  return { id, madeMs, who: metadata[META.who] ?? 'unknown' };
}

/** Metadata of a write entering through the API: every stamp at once. */
export function writeMetadata(stamp: Stamp, mtimeMs: number): Record<string, string> {
  return {
    [META.mtime]: formatMtime(mtimeMs),
    [META.made]: String(stamp.madeMs),
    [META.id]: stamp.id,
    [META.who]: safeWho(stamp.who),
  };
}

/**
 * Metadata of a multipart upload started through the API. S3 fixes metadata when the upload
 * starts, but the write is made when it completes: dfs-made is left out, and the completion's
 * own S3 event stamps it (lib/replicate.ts adoptionFor).
 */
export function uploadMetadata(id: string, who: string, mtimeMs: number): Record<string, string> {
  return { [META.mtime]: formatMtime(mtimeMs), [META.id]: id, [META.who]: safeWho(who) };
}

/** S3 metadata is US-ASCII; a name is kept readable where it can be. */
const safeWho = (who: string) => (/^[\x20-\x7e]{1,200}$/.test(who) ? who : encodeURIComponent(who).slice(0, 200));

export interface Adoption {
  metadata: Record<string, string>;
  stamp: Stamp;
  mtimeMs: number;
  /** Set when the version's own mtime was too far ahead of when it was made. */
  clampedFrom?: number;
}

/**
 * Stamps for a version written without them (a direct bucket write, or a multipart upload that
 * just completed), made at `madeMs` on S3's clock: the identity it already has or a new one, its
 * mtime if it carries a valid one, else none (it is then dated by dfs-made), and none either when
 * more than MAX_FUTURE_MS ahead (clamped to when it was made). User metadata is kept.
 */
export function adoptionOf(metadata: Record<string, string>, madeMs: number, store: string): Adoption {
  const given = parseMtime(metadata[META.mtime]);
  const clamped = given !== undefined && given > madeMs + MAX_FUTURE_MS;
  const mtimeMs = given === undefined || clamped ? madeMs : given;
  const stamp: Stamp = { id: metadata[META.id] || newWriteId(), madeMs, who: metadata[META.who] || `${store} (direct)` };
  // Without an mtime of its own the version is dated by dfs-made, and stays so if stamped again.
  const { [META.mtime]: _dropped, ...rest } = metadata;
  const mtime: Record<string, string> = given === undefined || clamped ? {} : { [META.mtime]: metadata[META.mtime]! };
  return {
    metadata: { ...rest, ...mtime, [META.made]: String(madeMs), [META.id]: stamp.id, [META.who]: safeWho(stamp.who) },
    stamp,
    mtimeMs,
    ...(clamped ? { clampedFrom: given } : {}),
  };
}

/**
 * The API's `x-dfs-mtime`: decimal milliseconds since 1970, no more than MAX_FUTURE_MS ahead of
 * `now`. Absent means `now`. Throws BadRequestError before anything is written.
 */
export function parseRequestMtime(raw: string | number | undefined, now: number): number {
  if (raw === undefined || raw === '') return now;
  const text = String(raw);
  if (!/^\d{1,16}$/.test(text)) throw new BadRequestError(`mtime must be whole milliseconds since 1970 in decimal digits, got "${text.slice(0, 40)}"`);
  const ms = Number(text);
  if (ms === 0) throw new BadRequestError('mtime 0 reads as "unknown" (rclone and s3-dfs alike): leave it out to date the file now');
  if (ms > now + MAX_FUTURE_MS) {
    throw new BadRequestError(`mtime ${new Date(Math.min(ms, MAX_DATE_MS)).toISOString()} is more than ${MAX_FUTURE_MS / 60_000} minutes ahead of the server's clock`);
  }
  return ms;
}
