/**
 * `dfs ls [PREFIX]`: pages through the composite listing, numbering names 0..n-1 over the whole
 * listing, and hands each page to the caller as it arrives, so memory holds one page whatever
 * the size of the store. `--verify` settles `unverified` rows with a metadata read. The locks
 * (GET /locks) are read once, after the first page, and joined to the rows by name.
 * No printing here; the caller formats the pages (cli/output.ts).
 */
import type { FileEntry, FileState, Listing } from '../lib/types';
import { listingOf as sharedListingOf } from '../client/answers';
import type { ApiResult, Transport } from './client';
import { CliError, cliGuard, EXIT, type ExitCode } from './exit';
import { readAnswerOf } from './get';
import { heldCount, readLocks, type LockInfo } from './locks';

/** Names asked for per page: the API's maximum. */
export const PAGE_SIZE = 1000;

/** Metadata reads in flight at once for `--verify`. */
const VERIFY_CONCURRENCY = 8;

export interface LsOptions {
  prefix?: string;
  verify: boolean;
  /** Read the locks and give each row its `lock`. */
  locks?: boolean;
  pageSize?: number;
}

/** A row's lock at one store, as `dfs ls --json` shows it. */
export interface RowLock {
  holder: string;
  since: string;
  /** ms since 1970, as GET /locks has it. */
  expires: number;
  /** Updates held in its queue, not applied yet. */
  held: number;
  reason?: string;
}

/** A listed name with its place in the whole listing. */
export interface LsRow extends FileEntry {
  index: number;
  /** Present on rows `--verify` looked at: true when their state now comes from a read. */
  verified?: boolean;
  /** With `locks`: the name's locks by store, null when it has none; absent when they could not be read. */
  lock?: Record<string, RowLock> | null;
}

export interface LsSink {
  /** One page of rows, in the server's order, indexes continuing the previous page. */
  page(rows: LsRow[]): void;
  /** Stores that did not answer, each named once, when first seen. */
  unavailable(stores: string[]): void;
  /**
   * With `locks`, once before the first page: every lock of the stack, or the error that kept
   * them from being read (the listing goes on without them).
   */
  locks?(locks: LockInfo[] | undefined, trouble?: CliError): void;
}

export interface LsResult {
  count: number;
  pages: number;
  /** Rows whose state `--verify` settled. */
  verified: number;
  /** Every store that missed at least one page. */
  unavailable: string[];
  exitCode: ExitCode;
}

const NO_STORE = 'nothing can be listed';

/**
 * Lists every name under `prefix`, following `next` until the server says there is no more.
 * Throws CliError: exit 5 when no store answered a page, 1 for a malformed answer or a cursor
 * that does not move, the mapped error for any other failed request. Pages delivered before a
 * failure stay delivered.
 */
export async function listAll(connect: () => Transport, opts: LsOptions, sink: LsSink): Promise<LsResult> {
  const api = connect();
  const unavailable = new Set<string>();
  let after: string | undefined;
  let count = 0;
  let pages = 0;
  let verified = 0;
  let locks: Map<string, Record<string, RowLock>> | undefined;
  for (;;) {
    const listing = listingOf(
      await api.send({ op: 'list', ...(opts.prefix ? { prefix: opts.prefix } : {}), ...(after !== undefined ? { after } : {}), limit: opts.pageSize ?? PAGE_SIZE }),
    );
    pages += 1;
    if (opts.locks && pages === 1) locks = await locksByName(api, sink);
    const fresh = listing.unavailable.filter((s) => !unavailable.has(s));
    fresh.forEach((s) => unavailable.add(s));
    if (fresh.length > 0) sink.unavailable(fresh);
    const rows: LsRow[] = listing.files.map((f, i) => ({ index: count + i, ...f, ...(locks ? { lock: locks.get(f.name) ?? null } : {}) }));
    if (opts.verify) verified += await verifyRows(api, rows);
    count += rows.length;
    sink.page(rows);
    if (listing.next === null) break;
    if (listing.next === after) throw new CliError(EXIT.error, 'BadResponse', 'the listing cursor did not move; stopping rather than loop');
    after = listing.next;
  }
  return { count, pages, verified, unavailable: [...unavailable], exitCode: EXIT.ok };
}

/**
 * The locks by name for the rows; undefined, and the sink told why, when they cannot be read
 * (an older API without GET /locks, the control bucket away): a listing is still worth having.
 * Being refused (exit 8) or interrupted stops the listing as any request would.
 */
async function locksByName(api: Transport, sink: LsSink): Promise<Map<string, Record<string, RowLock>> | undefined> {
  let all: LockInfo[];
  try {
    all = await readLocks(api);
  } catch (err) {
    if (!(err instanceof CliError) || (err.exitCode !== EXIT.error && err.exitCode !== EXIT.unavailable)) throw err;
    sink.locks?.(undefined, err);
    return undefined;
  }
  sink.locks?.(all);
  return rowLocks(all);
}

/** The locks as rows carry them: by name, then by store. */
export function rowLocks(all: LockInfo[]): Map<string, Record<string, RowLock>> {
  const byName = new Map<string, Record<string, RowLock>>();
  for (const l of all) {
    const row: RowLock = { holder: l.holder, since: l.since, expires: l.expires, held: heldCount(l), ...(l.reason !== undefined ? { reason: l.reason } : {}) };
    byName.set(l.key, { ...byName.get(l.key), [l.store]: row });
  }
  return byName;
}

/** The Listing of a 200 (client/answers.ts); a 503 and other failures become their CliError. */
export const listingOf = cliGuard((reply: ApiResult) => sharedListingOf(reply, NO_STORE));

/**
 * Replaces the state of each `unverified` row by what a metadata read (`?meta=1`, no body) says:
 * one version on every store that listed it → same; several → different. A name gone since the
 * listing keeps its state. Returns how many rows were settled.
 */
async function verifyRows(api: Transport, rows: LsRow[]): Promise<number> {
  const todo = rows.filter((r) => r.state === 'unverified');
  let settled = 0;
  let next = 0;
  const worker = async () => {
    for (let r = todo[next++]; r !== undefined; r = todo[next++]) {
      const state = stateFromRead(r, await api.send({ op: 'get', key: r.name, meta: true }));
      r.verified = state !== undefined;
      if (state) {
        r.state = state;
        settled += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(VERIFY_CONCURRENCY, todo.length) }, worker));
  return settled;
}

function stateFromRead(row: LsRow, reply: ApiResult): FileState | undefined {
  const answer = readAnswerOf(reply);
  if (answer.status === 'DIFFERENT') return 'different';
  if (answer.status === 'NOT_FOUND') return undefined;
  const listed = Object.values(row.stores).filter((s) => s !== null).length;
  return answer.copies.length >= listed ? 'same' : 'partial';
}

