import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { Store } from '../../lib/stores';
import type { JournalEvent } from '../../lib/types';
import type { LocalS3 } from './s3rver';
import { makeS3rverLikeS3 } from '../../scripts/s3rver-like-s3';

/** The part of an S3 notification record the tests look at; s3rver sends the rest too. */
export interface S3Record {
  eventName: string;
  eventTime: string;
  s3: { bucket: { name: string }; object: { key: string; eTag?: string; sequencer?: string } };
}
export interface S3Notification {
  Records: S3Record[];
}

/**
 * Collects every notification s3rver emits. s3rver emits before it answers the request, so
 * right after `await s3.send(put)` the put's event is already here: no waiting needed.
 */
export class EventTap {
  private seen: S3Notification[] = [];
  private listeners: ((e: S3Notification) => void)[] = [];

  constructor(s3: LocalS3) {
    s3.server.on('event', (e) => {
      const n = e as S3Notification;
      this.seen.push(n);
      for (const l of this.listeners) l(n);
    });
  }

  /** Events on `buckets` since the last take, oldest first; forgets them. */
  take(buckets?: string[]): S3Notification[] {
    const all = this.seen;
    this.seen = [];
    return buckets ? all.filter((n) => buckets.includes(n.Records[0]!.s3.bucket.name)) : all;
  }

  /** The one event on `bucket` since the last take; fails if there is not exactly one. */
  takeOne(bucket: string): S3Notification {
    const got = this.take([bucket]);
    if (got.length !== 1) throw new Error(`expected one event on ${bucket}, got ${got.length}: ${describeEvents(got)}`);
    return got[0]!;
  }

  onEvent(fn: (e: S3Notification) => void): void {
    this.listeners.push(fn);
  }
}

export const describeEvents = (ns: S3Notification[]) =>
  ns.map((n) => n.Records.map((r) => `${r.eventName} ${r.s3.bucket.name}/${r.s3.object.key}`).join()).join('; ') || 'none';

/**
 * Polls `probe` until it returns something other than undefined/false, or throws after
 * `timeoutMs` saying what it waited for. Bounded: a condition, not a sleep.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Every object of a bucket with its prefix, all pages. */
export async function listAll(s3: S3Client, bucket: string, prefix?: string) {
  const out: { key: string; etag: string; lastModified: Date; size: number }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, etag: o.ETag!, lastModified: o.LastModified!, size: o.Size ?? 0 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** The whole journal, oldest first, read straight from the control bucket (no settle window). */
export async function readJournal(control: { s3: S3Client; bucket: string }): Promise<JournalEvent[]> {
  const objects = await listAll(control.s3, control.bucket, 'journal/');
  const events = await mapLimit(objects, 32, async (o) => {
    const res = await control.s3.send(new GetObjectCommand({ Bucket: control.bucket, Key: o.key }));
    return JSON.parse(await res.Body!.transformToString()) as JournalEvent;
  });
  return events.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/** Key → body text of every object in a store. */
export async function contents(store: Store): Promise<Map<string, string>> {
  const objects = await listAll(store.s3, store.bucket);
  const bodies = await mapLimit(objects, 32, async (o) => {
    const res = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: o.key }));
    return [o.key, await res.Body!.transformToString()] as const;
  });
  return new Map(bodies);
}

/** `fn` over `items` with at most `width` calls in flight (a thousand at once swamps s3rver); results in order. */
export async function mapLimit<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
    }),
  );
  return out;
}

/**
 * Moves an object's LastModified on s3rver (its file's mtime) to `when`. S3 dates writes to the
 * second; this lets a test say "written an hour ago" instead of waiting for the clock.
 */
export async function backdate(s3: LocalS3, bucket: string, key: string, when: Date): Promise<void> {
  const { utimes } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const parts = key.split('/');
  const name = `${parts.pop()}._S3rver_object`;
  await utimes(join(s3.directory, bucket, ...parts, name), when, when);
}

/** Runs `fn` over `items`, at most `width` at a time. */
export async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

/**
 * s3rver made to keep S3's promises (scripts/s3rver-like-s3.ts). startS3rver applies it already
 * unless asked for plain s3rver; these names stay for the tests that still call them, and apply
 * the whole of it (a second call does nothing).
 */
export const emulateS3Atomicity = (s3: LocalS3): void => makeS3rverLikeS3(s3.server);
/** See emulateS3Atomicity: one module now makes s3rver answer PUTs once written, and the rest. */
export const awaitS3rverWrites = (s3: LocalS3): void => makeS3rverLikeS3(s3.server);
