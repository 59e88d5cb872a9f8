/**
 * `dfs ls [PREFIX]`: pages through the composite listing, numbering names 0..n-1 over the whole
 * listing, and hands each page to the caller as it arrives, so memory holds one page whatever
 * the size of the store. `--verify` settles `unverified` rows with a metadata read.
 * No printing here; the caller formats the pages (cli/output.ts).
 */
import type { FileEntry, FileState, Listing } from '../lib/types';
import type { ApiResult, Transport } from './client';
import { CliError, EXIT, errorForResponse, type ExitCode } from './exit';
import { readAnswerOf } from './get';

/** Names asked for per page: the API's maximum. */
export const PAGE_SIZE = 1000;

/** Metadata reads in flight at once for `--verify`. */
const VERIFY_CONCURRENCY = 8;

export interface LsOptions {
  prefix?: string;
  verify: boolean;
  pageSize?: number;
}

/** A listed name with its place in the whole listing. */
export interface LsRow extends FileEntry {
  index: number;
  /** Present on rows `--verify` looked at: true when their state now comes from a read. */
  verified?: boolean;
}

export interface LsSink {
  /** One page of rows, in the server's order, indexes continuing the previous page. */
  page(rows: LsRow[]): void;
  /** Stores that did not answer, each named once, when first seen. */
  unavailable(stores: string[]): void;
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
  for (;;) {
    const listing = listingOf(
      await api.send({ op: 'list', ...(opts.prefix ? { prefix: opts.prefix } : {}), ...(after !== undefined ? { after } : {}), limit: opts.pageSize ?? PAGE_SIZE }),
    );
    pages += 1;
    const fresh = listing.unavailable.filter((s) => !unavailable.has(s));
    fresh.forEach((s) => unavailable.add(s));
    if (fresh.length > 0) sink.unavailable(fresh);
    const rows: LsRow[] = listing.files.map((f, i) => ({ index: count + i, ...f }));
    if (opts.verify) verified += await verifyRows(api, rows);
    count += rows.length;
    sink.page(rows);
    if (listing.next === null) break;
    if (listing.next === after) throw badAnswer('the listing cursor did not move; stopping rather than loop');
    after = listing.next;
  }
  return { count, pages, verified, unavailable: [...unavailable], exitCode: EXIT.ok };
}

/** The Listing of a 200; a 503 and other failures become their CliError. */
export function listingOf({ status, body }: ApiResult): Listing {
  if (status !== 200) throw errorForResponse(status, body, NO_STORE);
  const b = body as Partial<Record<keyof Listing, unknown>> | null;
  if (typeof b !== 'object' || b === null || !Array.isArray(b.files) || !(b.next === null || typeof b.next === 'string')) {
    throw badAnswer('the server answered 200 with something that is not a listing');
  }
  for (const f of b.files as unknown[]) {
    const e = f as Partial<FileEntry> | null;
    if (typeof e?.name !== 'string' || typeof e.size !== 'number' || typeof e.stores !== 'object' || e.stores === null) {
      throw badAnswer('the listing holds an entry without name, size or stores');
    }
  }
  const unavailable = Array.isArray(b.unavailable) ? b.unavailable.filter((s): s is string => typeof s === 'string') : [];
  return { files: b.files as FileEntry[], next: b.next, unavailable };
}

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

const badAnswer = (message: string) => new CliError(EXIT.error, 'BadResponse', message);
