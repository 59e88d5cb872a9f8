/**
 * The API's answers as clients see them: their types and one guard per answer, shared by `dfs`
 * and the web page. A guard returns the answer it expects, or throws AnswerError: `refused`
 * when the API said no (its status and error body, for the client to put in its own words),
 * `malformed` when the answer is not what the route answers (a wrong endpoint, a proxy's page).
 * No Node or DOM APIs; the types come from lib/types.ts as types only, so no server code follows.
 */
import type { EventPage, FileEntry, JournalEvent, Listing, LockInfo, PlanEntry, ReadAnswer, StoreOutcome, SyncReport, UploadPlan, UploadTarget, WriteAnswer } from '../lib/types';
import type { ApiResult } from './routes';

export type {
  Content,
  CopyInfo,
  ErrorBody,
  EventPage,
  FileEntry,
  FileState,
  LockInfo,
  JournalEvent,
  Listing,
  PlanEntry,
  ReadAnswer,
  ReadStatus,
  StoreEntry,
  StoreOutcome,
  SyncReport,
  UploadPlan,
  UploadTarget,
  VersionInfo,
  WriteAnswer,
} from '../lib/types';


/** What DELETE /locks answers: how far the drain got. */
export interface DrainAnswer {
  key: string;
  store: string;
  applied: number;
  total: number;
  done: boolean;
  discarded?: number;
}

/** A token as `GET /tokens` shows it: never its secret. */
export interface TokenInfo {
  name: string;
  scope: 'read' | 'write';
  created: string;
  createdBy: string;
}

/** What POST /reconcile/apply did with a batch. */
export interface AppliedBatch {
  done: number;
  failed: { key: string; error: string }[];
}

/** Updates held in the lock's queue and not applied yet: what an unlock applies, or a discard drops. */
export const heldCount = (lock: Pick<LockInfo, 'next' | 'applied'>): number => Math.max(0, lock.next - 1 - lock.applied);

/** An answer a guard did not expect. */
export class AnswerError extends Error {
  override readonly name = 'AnswerError';

  constructor(
    /** `refused`: the API answered with an error; `malformed`: not with what the route answers. */
    readonly kind: 'refused' | 'malformed',
    readonly status: number,
    readonly body: unknown,
    message: string,
    /** For a refusal: what no store answering (503) means for this request, e.g. "nothing was stored". */
    readonly unavailableMeans?: string,
  ) {
    super(message);
  }

  /** The API's error code (`InvalidKey`, `LockHeld`, …), `Http<status>` without one, `BadResponse` when malformed. */
  get code(): string {
    if (this.kind === 'malformed') return 'BadResponse';
    const error = (this.body as { error?: unknown } | null)?.error;
    return typeof error === 'string' ? error : `Http${this.status}`;
  }
}

/** The AnswerError of a reply that is not the success a guard expects. */
export function refused({ status, body }: ApiResult, unavailableMeans?: string): AnswerError {
  const said = (body as { message?: unknown } | null)?.message;
  return new AnswerError('refused', status, body, typeof said === 'string' ? said : `the server answered ${status}`, unavailableMeans);
}

const malformed = ({ status, body }: ApiResult, message: string) => new AnswerError('malformed', status, body, message);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

/** The ReadAnswer of a 200 or a 404 NOT_FOUND (GET /files/{key}). */
export function readAnswerOf(reply: ApiResult): ReadAnswer {
  const b = reply.body;
  if (reply.status === 404 && isObject(b) && b.status === 'NOT_FOUND') return withUnavailable(b) as ReadAnswer;
  if (reply.status !== 200) throw refused(reply);
  if (isObject(b) && b.status === 'SINGLE' && Array.isArray(b.copies)) return withUnavailable(b) as ReadAnswer;
  if (isObject(b) && b.status === 'DIFFERENT' && Array.isArray(b.versions)) return withUnavailable(b) as ReadAnswer;
  throw malformed(reply, 'the server answered 200 with something that is not a read answer');
}

// Older or partial servers may leave `unavailable` out; everything downstream relies on it.
const withUnavailable = (b: Record<string, unknown>) => ({ ...b, unavailable: Array.isArray(b.unavailable) ? b.unavailable : [] });

/** The Listing of a 200 to GET /files. */
export function listingOf(reply: ApiResult, unavailableMeans = 'nothing can be listed'): Listing {
  if (reply.status !== 200) throw refused(reply, unavailableMeans);
  const b = reply.body;
  if (!isObject(b) || !Array.isArray(b.files) || !(b.next === null || typeof b.next === 'string')) {
    throw malformed(reply, 'the server answered 200 with something that is not a listing');
  }
  for (const f of b.files as unknown[]) {
    const e = f as Partial<FileEntry> | null;
    if (typeof e?.name !== 'string' || typeof e.size !== 'number' || typeof e.stores !== 'object' || e.stores === null) {
      throw malformed(reply, 'the listing holds an entry without name, size or stores');
    }
  }
  return { files: b.files as FileEntry[], next: b.next, unavailable: strings(b.unavailable) };
}

/**
 * The WriteAnswer of a PUT, DELETE or complete: 200 (every store), 207 (some), 503 (none) all
 * carry one. `noneMeans` ends the words of a bare 503.
 */
export function writeAnswerOf(reply: ApiResult, noneMeans: string): WriteAnswer {
  const { status, body } = reply;
  const known = isObject(body) && Array.isArray(body.results);
  if ((status === 200 || status === 207 || status === 503) && known) {
    for (const r of body.results as unknown[]) {
      const o = r as Partial<StoreOutcome> | null;
      if (typeof o?.store !== 'string' || typeof o.ok !== 'boolean') throw malformed(reply, 'a store outcome in the answer has no store or ok');
    }
    return body as unknown as WriteAnswer;
  }
  if (status === 200 || status === 207) throw malformed(reply, `the server answered ${status} without per-store results`);
  throw refused(reply, noneMeans);
}

/** The plan of a POST /uploads answer, checked so that a bad one cannot make a client misread the file. */
export function uploadPlanOf(reply: ApiResult, size: number): UploadPlan {
  if (reply.status !== 200) throw refused(reply, 'nothing was stored');
  const p = reply.body as Partial<UploadPlan> | null;
  if (
    typeof p !== 'object' || p === null ||
    !Number.isSafeInteger(p.partSize) || (p.partSize as number) < 1 ||
    !Number.isSafeInteger(p.parts) || (p.parts as number) < 1 || (p.parts as number) > 10_000 ||
    !Array.isArray(p.uploads) || !p.uploads.every((u) => typeof u?.store === 'string' && typeof u.uploadId === 'string')
  ) {
    throw malformed(reply, 'the server answered POST /uploads with something that is not an upload plan');
  }
  if (p.parts !== Math.max(1, Math.ceil(size / (p.partSize as number)))) {
    throw malformed(reply, `the upload plan's ${p.parts} parts of ${p.partSize} bytes do not cover ${size} bytes`);
  }
  return { ...(p as UploadPlan), failed: Array.isArray(p.failed) ? p.failed : [] };
}

/** The part URLs of a 200 to POST /uploads/sign: per store of `uploads`, one per part asked for. */
export function signedUrlsOf(reply: ApiResult, uploads: UploadTarget[], parts: number[]): Record<string, string[]> {
  if (reply.status !== 200) throw refused(reply, 'no part URL could be signed');
  const urls = (reply.body as { urls?: unknown } | null)?.urls as Record<string, unknown> | undefined;
  for (const u of uploads) {
    const list = urls?.[u.store];
    if (!Array.isArray(list) || list.length !== parts.length || !list.every((x) => typeof x === 'string')) {
      throw malformed(reply, `POST /uploads/sign answered without ${parts.length} URLs for ${u.store}`);
    }
  }
  return urls as Record<string, string[]>;
}

/** The locks of a 200 to GET /locks. */
export function locksOf(reply: ApiResult): LockInfo[] {
  if (reply.status !== 200) throw refused(reply, 'no locks can be read');
  const locks = (reply.body as { locks?: unknown } | null)?.locks;
  if (!Array.isArray(locks) || !locks.every(isLock)) {
    throw malformed(reply, 'the server answered GET /locks with something that is not a list of locks');
  }
  return locks;
}

function isLock(l: unknown): l is LockInfo {
  const x = l as Partial<LockInfo> | null;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.key === 'string' &&
    typeof x.store === 'string' &&
    typeof x.holder === 'string' &&
    typeof x.since === 'string' &&
    typeof x.expires === 'number' &&
    Number.isInteger(x.next) &&
    Number.isInteger(x.applied) &&
    (x.reason === undefined || typeof x.reason === 'string')
  );
}

/** The lock of a 201 (made) or 200 (renewed) to POST /locks/{key}. */
export function lockAnswerOf(reply: ApiResult): LockInfo {
  if (reply.status !== 201 && reply.status !== 200) throw refused(reply);
  const l = reply.body as Partial<LockInfo> | null;
  const ok = typeof l === 'object' && l !== null && typeof l.key === 'string' && typeof l.store === 'string' && typeof l.holder === 'string' && typeof l.expires === 'number';
  if (!ok) throw malformed(reply, `the server answered ${reply.status} to POST /locks without the lock`);
  return l as LockInfo;
}

/** How far an unlock got: a 200 (done) or 202 (going on by itself) to DELETE /locks/{key}. */
export function drainAnswerOf(reply: ApiResult, key: string, store: string): DrainAnswer {
  if (reply.status !== 200 && reply.status !== 202) throw refused(reply);
  const d = reply.body as Partial<DrainAnswer> | null;
  if (typeof d !== 'object' || d === null || typeof d.applied !== 'number' || typeof d.total !== 'number' || typeof d.done !== 'boolean') {
    throw malformed(reply, `the server answered ${reply.status} to DELETE /locks without how far the unlock got`);
  }
  return { key, store, applied: d.applied, total: d.total, done: d.done, ...(typeof d.discarded === 'number' ? { discarded: d.discarded } : {}) };
}

/** The EventPage of a 200 to GET /events. */
export function eventPageOf(reply: ApiResult): EventPage {
  if (reply.status !== 200) throw refused(reply, 'no events can be read');
  const p = reply.body as Partial<EventPage> | null;
  if (typeof p !== 'object' || p === null || !Array.isArray(p.events) || !(p.next === null || typeof p.next === 'string')) {
    throw malformed(reply, 'the server answered GET /events with something that is not a page of events');
  }
  for (const e of p.events as unknown[]) {
    const j = e as Partial<JournalEvent> | null;
    if (typeof j?.id !== 'string' || typeof j.action !== 'string' || typeof j.key !== 'string') {
      throw malformed(reply, 'an event in the answer has no id, action or key');
    }
  }
  return { events: p.events, next: p.next, more: p.more === true };
}

/** The SyncReport of a 200 to POST /reconcile; a 409 (a safety guard said no) is a refusal like any other. */
export function syncReportOf(reply: ApiResult): SyncReport {
  if (reply.status !== 200) throw refused(reply, 'nothing can be compared');
  const r = reply.body as Partial<SyncReport> | null;
  if (typeof r !== 'object' || r === null || typeof r.counts !== 'object' || r.counts === null || !Array.isArray(r.entries)) {
    throw malformed(reply, 'the server answered POST /reconcile with something that is not a sync report');
  }
  for (const e of r.entries as unknown[]) {
    const p = e as Partial<PlanEntry> | null;
    if (typeof p?.key !== 'string' || (p.action !== 'copy' && p.action !== 'delete')) throw malformed(reply, 'the plan holds an entry without key or action');
  }
  const counts = r.counts as Partial<SyncReport['counts']>;
  return {
    ...(r as SyncReport),
    counts: {
      match: counts.match ?? 0,
      differ: counts.differ ?? 0,
      missing: counts.missing ?? {},
      copies: counts.copies ?? 0,
      deletes: counts.deletes ?? 0,
    },
    unavailable: Array.isArray(r.unavailable) ? r.unavailable : [],
  };
}

/** What a 200 to POST /reconcile/apply did with `batch`: every step done or failed. */
export function appliedOf(reply: ApiResult, batch: PlanEntry[]): AppliedBatch {
  if (reply.status !== 200) throw refused(reply, 'nothing was applied');
  const a = reply.body as { done?: unknown; failed?: unknown } | null;
  if (typeof a?.done !== 'number' || !Array.isArray(a.failed)) throw malformed(reply, 'the server answered POST /reconcile/apply without done and failed');
  if (a.done + a.failed.length !== batch.length) throw malformed(reply, `POST /reconcile/apply accounted for ${a.done + a.failed.length} of ${batch.length} steps`);
  return { done: a.done, failed: a.failed as AppliedBatch['failed'] };
}

export function isTokenInfo(t: unknown): t is TokenInfo {
  const i = t as Partial<TokenInfo> | null;
  return (
    typeof i === 'object' &&
    i !== null &&
    typeof i.name === 'string' &&
    (i.scope === 'read' || i.scope === 'write') &&
    typeof i.created === 'string' &&
    typeof i.createdBy === 'string'
  );
}

/** The tokens of a 200 to GET /tokens (name, scope and making; never a secret). */
export function tokensOf(reply: ApiResult): TokenInfo[] {
  if (reply.status !== 200) throw refused(reply);
  const tokens = (reply.body as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(tokens) || !tokens.every(isTokenInfo)) {
    throw malformed(reply, 'the server answered GET /tokens with something that is not a list of tokens');
  }
  return tokens.map(({ name, scope, created, createdBy }) => ({ name, scope, created, createdBy }));
}
