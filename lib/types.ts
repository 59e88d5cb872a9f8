/**
 * The API contract of DESIGN.md as types. The CLI and the web page import these with
 * `import type` only, so no server code reaches their bundles.
 */

/** Where a version's bytes are: inline when small, a short-lived presigned URL otherwise. */
export type Content = { base64: string } | { url: string; expires: string };

/** What one store holds for a key. */
export interface CopyInfo {
  store: string;
  size: number;
  etag: string;
  /** ISO-8601 logical mtime (x-amz-meta-mtime, else LastModified). */
  mtime: string;
}

export interface VersionInfo {
  stores: string[];
  size: number;
  etag: string;
  mtime: string;
  newest: boolean;
  content?: Content;
}

export type ReadAnswer =
  | { status: 'SINGLE'; key: string; copies: CopyInfo[]; content?: Content; unavailable: string[] }
  | { status: 'DIFFERENT'; key: string; versions: VersionInfo[]; unavailable: string[] }
  | { status: 'NOT_FOUND'; key: string; unavailable: string[] };

export type ReadStatus = ReadAnswer['status'];

/** Every 4xx body, and the only body a 500 carries. */
export interface ErrorBody {
  error: string;
  message?: string;
}

/**
 * A call that does not go through API Gateway: `sls invoke local -f api --data '…'` and
 * `dfs --via lambda`. The answer is `{ statusCode, body }` with `body` as an object.
 */
export type DirectEvent =
  | { op: 'get'; key: string; meta?: boolean }
  | { op: 'list'; prefix?: string; after?: string; limit?: number };

export interface DirectResult {
  statusCode: number;
  body: unknown;
}

/** A file's state across stores, from cheap evidence (size, single-part ETag) only. */
export type FileState = 'same' | 'different' | 'partial' | 'unverified';

export interface StoreEntry {
  size: number;
  etag: string;
  /** S3's LastModified of this copy (listings carry no logical mtime). */
  mtime: string;
}

export interface FileEntry {
  name: string;
  /** Size and mtime of the most recently written copy. */
  size: number;
  mtime: string;
  state: FileState;
  /** Every answering store: its copy, or null when it does not hold the name. */
  stores: Record<string, StoreEntry | null>;
}

export interface Listing {
  files: FileEntry[];
  next: string | null;
  unavailable: string[];
}

/** What one store did with a write or a delete. */
export interface StoreOutcome {
  store: string;
  ok: boolean;
  etag?: string;
  /** Why it failed, in words. */
  error?: string;
  /** Why it failed, as a short code: NoAnswer, NoSuchBucket, AccessDenied, NoSuchUpload, InvalidPart, LockHeld, … */
  code?: string;
  /** The store is locked by someone else: the write is held as this entry of the lock's queue. */
  held?: number;
}

/** The answer to PUT /files, POST /uploads/complete and DELETE /files: one outcome per store. */
export interface WriteAnswer {
  key: string;
  size?: number;
  mtime?: string;
  results: StoreOutcome[];
}

export interface UploadTarget {
  store: string;
  uploadId: string;
}

export interface UploadPlan {
  key: string;
  size: number;
  mtime: string;
  partSize: number;
  parts: number;
  uploads: UploadTarget[];
  failed: StoreOutcome[];
}

/** What the servers did, as `GET /events` and `dfs watch` show it. */
export interface JournalEvent {
  /** Sortable and unique; pass the last one seen as `after`. */
  id: string;
  /** ISO-8601. */
  time: string;
  /** replicate | skip | conflict | delete | reconcile | upload | lock … */
  action: string;
  key: string;
  /** On whose behalf: the token whose write or delete this carries out, `<store> (direct)` for a bucket's own. */
  who?: string;
  from?: string;
  to?: string[];
  /** Why, in words (e.g. `server2 newer (2026-… vs 2026-…)`). */
  reason?: string;
}

export interface EventPage {
  events: JournalEvent[];
  next: string | null;
  more: boolean;
}

/** One step of a reconcile plan, with its reason in rclone's manner. */
export type PlanEntry =
  | { key: string; action: 'copy'; from: string; to: string[]; reason: string }
  | { key: string; action: 'delete'; from: string[]; deletedAt: string; reason: string };

/** The answer of POST /reconcile, dry run or not. */
export interface SyncReport {
  dryRun: boolean;
  counts: {
    /** Names equal on every store. */
    match: number;
    /** Names on every store with differing content. */
    differ: number;
    /** Per store: names it lacks. */
    missing: Record<string, number>;
    /** Copies and deletes the plan makes. */
    copies: number;
    deletes: number;
  };
  entries: PlanEntry[];
  unavailable: string[];
  /** Names left alone: a version written outside dfs that its own S3 event has yet to stamp. */
  waiting?: { key: string; stores: string[]; reason: string }[];
  /** Steps into a store locked for the key: held in the lock's queue, not written. */
  held?: { key: string; store: string; holder: string; since: string }[];
  /** Locks past their expiry, drained and released before planning. */
  expiredLocks?: { key: string; store: string; applied: number }[];
  /** Replication events that had failed every retry, replayed before planning. */
  replayed?: { replayed: number; failed: number };
  applied?: { done: number; failed: { key: string; error: string }[] };
}

/** A lock on a key at one store, as `GET /locks` and `POST /locks/{key}` show it. */
export interface LockInfo {
  key: string;
  store: string;
  /** The token name that holds it. */
  holder: string;
  /** ISO-8601. */
  since: string;
  /** ms since 1970. */
  expires: number;
  reason?: string;
  /** The number the next held update gets: the queue holds 1 .. next-1. */
  next: number;
  /** Held updates applied into the store so far (an unlock under way). */
  applied: number;
  /** Set once an unlock has started draining the queue. */
  draining?: { by: string; since: string };
}
