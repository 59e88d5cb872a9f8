/**
 * What the user reads. Pure functions from results to text, so the wording is tested without
 * running anything. Human text is short; `--json` prints the API answer plus what the CLI did.
 */
import { basename } from 'node:path';
import type { Content, JournalEvent, PlanEntry, ReadAnswer, StoreEntry, SyncReport } from '../lib/types';
import type { CliError } from './exit';
import type { GetResult } from './get';
import type { LsResult, LsRow, RowLock } from './ls';
import type { LockResult, UnlockResult } from './locking';
import { heldCount, type LockInfo } from './locks';
import { formatBytes } from './progress';
import type { PutResult } from './put';
import type { RmResult } from './rm';
import type { Applied, SyncResult } from './sync';
import type { CreatedToken, TokenInfo } from './token';
import { padEnd, padStart, widthOf } from './width';

export interface Lines {
  out: string[];
  err: string[];
}

/** Server text may hold anything: escape control characters so a terminal cannot be steered. */
export function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `2024-05-01T12:00:00.000Z` → `2024-05-01 12:00:00Z`; anything unparsable is shown as given. */
export function formatTime(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? clean(iso) : new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

const display = (shown: string) => clean(shown.replace(/^\.\//, ''));

/** Human-readable lines for a finished `get`. */
export function describeGet(name: string, { answer, saved }: GetResult): Lines {
  const out: string[] = [];
  const err: string[] = [];
  if (answer.unavailable.length > 0) {
    err.push(`dfs: warning: ${answer.unavailable.join(', ')} did not answer; the result covers only the stores that did`);
  }
  if (answer.status === 'NOT_FOUND') {
    err.push(`dfs: ${clean(name)}: not found on any store${answer.unavailable.length > 0 ? ' that answered' : ''}`);
  } else if (answer.status === 'SINGLE') {
    const f = saved[0];
    const stores = answer.copies.map((c) => c.store);
    if (f) out.push(`saved ${display(f.shown)} (${formatBytes(f.size)}, ${stores.length > 1 ? 'identical on' : 'only on'} ${stores.join(', ')})`);
  } else if (saved.length === 1 && saved[0]) {
    const f = saved[0];
    const others = answer.versions.filter((v) => !v.stores.some((s) => f.stores.includes(s))).flatMap((v) => v.stores);
    const which = f.newest ? `the newest of ${answer.versions.length} versions` : `not the newest (${newestStores(answer)} has newer)`;
    out.push(`saved ${display(f.shown)} (${formatBytes(f.size)}, version on ${f.stores.join('+')}, ${which}; other versions on ${others.join(', ')})`);
  } else {
    out.push(`${clean(name)} differs between stores; saved ${saved.length} versions:`);
    const width = Math.max(...saved.map((f) => widthOf(display(f.shown))));
    const sizeWidth = Math.max(...saved.map((f) => formatBytes(f.size).length));
    for (const f of saved) {
      out.push(
        `  ${padEnd(display(f.shown), width)}  ${padStart(formatBytes(f.size), sizeWidth)}  ${formatTime(f.mtime)}  ${f.stores.join('+')}${f.newest ? '  (newest)' : ''}`,
      );
    }
    const stores = [...new Set(saved.flatMap((f) => f.stores))].sort();
    out.push(`keep one as ${display(name)} with --resolve newest, or --resolve ${stores.join('|')}`);
  }
  return { out, err };
}

function newestStores(answer: Extract<ReadAnswer, { status: 'DIFFERENT' }>): string {
  return answer.versions.find((v) => v.newest)?.stores.join('+') ?? 'another store';
}

/**
 * The `--json` document for `get`: the API answer, inline base64 replaced by
 * `{"inlineBytes": N}` to keep output small (URLs are kept), plus `saved`: the paths written.
 */
export function getJson({ answer, saved }: GetResult): Record<string, unknown> {
  const slim = (c: Content | undefined) => (c && 'base64' in c ? { inlineBytes: Buffer.byteLength(c.base64, 'base64') } : c);
  const body: Record<string, unknown> =
    answer.status === 'SINGLE'
      ? { ...answer, content: slim(answer.content) }
      : answer.status === 'DIFFERENT'
        ? { ...answer, versions: answer.versions.map((v) => ({ ...v, content: slim(v.content) })) }
        : { ...answer };
  return { ...body, saved: saved.map((t) => t.shown) };
}

/** `{"error","message", …details}`: what `--json` prints on stdout for any failure. */
export function errorJson(e: CliError): Record<string, unknown> {
  return { error: e.code, message: e.message, ...e.details };
}

/** `2024-05-02 13:30` in local time (or in `timeZone`), like `ls -l`; anything unparsable is shown as given. */
export function formatLocalTime(iso: string, timeZone?: string): string {
  const p = localParts(iso, timeZone);
  return p ? `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}` : clean(iso);
}

/** `13:30:05` in local time (or in `timeZone`). */
export function formatClock(iso: string, timeZone?: string): string {
  const p = localParts(iso, timeZone);
  return p ? `${p.hour}:${p.minute}:${p.second}` : clean(iso);
}

// One formatter per zone: building one per row would cost more than the rest of the row.
const formatters = new Map<string, Intl.DateTimeFormat>();

function localParts(iso: string, timeZone?: string): Record<string, string> | undefined {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return undefined;
  let f = formatters.get(timeZone ?? '');
  if (!f) {
    const two = '2-digit';
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: two, day: two, hour: two, minute: two, second: two, hourCycle: 'h23' });
    formatters.set(timeZone ?? '', f);
  }
  return Object.fromEntries(f.formatToParts(t).map((part) => [part.type, part.value]));
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** The stores holding a name, in the server's order, then those that lack it: `server2 (missing: server1)`. */
export function storesCell(stores: Record<string, StoreEntry | null>): string {
  const names = Object.keys(stores);
  const holding = names.filter((s) => stores[s]);
  const missing = names.filter((s) => !stores[s]);
  return clean(`${holding.join(',') || '-'}${missing.length > 0 ? ` (missing: ${missing.join(',')})` : ''}`);
}

/** `ann@server1(3)`: who holds the name's lock at each store, and how many updates it holds back. */
export function lockCell(lock: Record<string, RowLock>): string {
  return clean(
    Object.entries(lock)
      .map(([store, l]) => `${l.holder}@${store}(${l.held})`)
      .join(','),
  );
}

/**
 * The `dfs ls` table, one page at a time. Column widths fit the rows seen so far and only grow,
 * so pages printed one after another stay aligned without holding the whole listing. The LOCK
 * column is there when some listed name may be locked (`useLocks`, before the first page),
 * as wide as its widest cell from the start.
 */
export class LsTable {
  private width = { index: 1, name: 4, size: 4, lock: 0 };
  private started = false;

  /** The locks of the names to come (ls.ts `rowLocks`): a LOCK column when there is any. */
  useLocks(locks: Iterable<Record<string, RowLock>>): void {
    for (const l of locks) this.width.lock = Math.max(this.width.lock, 4, widthOf(lockCell(l)));
  }

  /** The lines of one page; the first page's start with the header. */
  lines(rows: LsRow[]): string[] {
    if (rows.length === 0) return [];
    for (const r of rows) {
      this.width.index = Math.max(this.width.index, String(r.index).length);
      this.width.name = Math.max(this.width.name, widthOf(clean(r.name)));
      this.width.size = Math.max(this.width.size, formatBytes(r.size).length);
    }
    const out = this.started ? [] : [this.line('#', 'NAME', 'SIZE', 'MODIFIED', 'STATE', 'LOCK', 'STORES')];
    this.started = true;
    for (const r of rows) {
      out.push(this.line(String(r.index), clean(r.name), formatBytes(r.size), formatLocalTime(r.mtime), r.state, r.lock ? lockCell(r.lock) : '-', storesCell(r.stores)));
    }
    return out;
  }

  private line(index: string, name: string, size: string, mtime: string, state: string, lock: string, stores: string): string {
    const w = this.width;
    const lockCol = w.lock > 0 ? `${padEnd(lock, w.lock)}  ` : '';
    return `${index.padStart(w.index)}  ${padEnd(name, w.name)}  ${size.padStart(w.size)}  ${mtime.padEnd(16)}  ${state.padEnd(10)}  ${lockCol}${stores}`;
  }
}

/**
 * `dfs ls --json` as it streams: `{"files":[` with the first page, one row per line, and the
 * closing fields at the end. A failure after the first page closes the document with the
 * error's fields, so the output stays one valid JSON object.
 */
export class LsJson {
  private opened = false;
  private first = true;

  constructor(private readonly write: (text: string) => void) {}

  get started(): boolean {
    return this.opened;
  }

  page(rows: LsRow[]): void {
    if (!this.opened) this.write('{"files":[');
    this.opened = true;
    for (const r of rows) {
      this.write(`${this.first ? '\n' : ',\n'}${JSON.stringify(r)}`);
      this.first = false;
    }
  }

  end(fields: Record<string, unknown>): void {
    if (!this.opened) this.write('{"files":[');
    this.opened = true;
    const rest = JSON.stringify(fields).slice(1);
    this.write(`${this.first ? '' : '\n'}]${rest === '}' ? '}' : `,${rest}`}\n`);
  }
}

/** The `--json` closing fields of `dfs ls`. */
export function lsJsonEnd(result: Pick<LsResult, 'unavailable' | 'pages' | 'count' | 'verified'>, verify: boolean): Record<string, unknown> {
  return { unavailable: result.unavailable, count: result.count, pages: result.pages, ...(verify ? { verified: result.verified } : {}) };
}

/** What `dfs put` says: where the file went, and per store what failed. */
export function describePut(r: PutResult, to: string): Lines {
  const out: string[] = [];
  const err: string[] = [];
  const ok = r.results.filter((x) => x.ok && x.held === undefined).map((x) => x.store);
  const held = r.results.filter((x) => x.ok && x.held !== undefined);
  const failed = r.results.filter((x) => !x.ok);
  const what = `${basename(r.file) === r.key ? clean(r.key) : `${clean(r.file)} as ${clean(r.key)}`} (${formatBytes(r.size)}${
    r.multipart ? `, ${plural(r.multipart.parts, 'part', 'parts')}` : ''
  })`;
  if (ok.length > 0) out.push(`stored ${what} on ${ok.join(', ')}${to !== 'all' && failed.length === 0 ? '; replication copies it to the other stores' : ''}`);
  else if (held.length === 0) err.push(`dfs: ${what} was stored on no store`);
  // Someone else's lock on the file there: the write waits in the lock's queue (dfs locks).
  for (const h of held) out.push(`held ${ok.length > 0 ? 'it' : what} for ${h.store}, locked by someone else: update #${h.held} of the lock's queue, applied at unlock`);
  for (const f of failed) err.push(`dfs: not stored on ${f.store}: ${clean(f.error ?? 'failed')}`);
  if (ok.length > 0 && failed.length > 0) {
    err.push(`dfs: replication or dfs sync copies it to ${failed.map((f) => f.store).join(', ')} once reachable; or run dfs put again`);
  }
  const lost = r.multipart?.abortFailed ?? [];
  if (lost.length > 0) err.push(`dfs: warning: could not abort the upload on ${lost.join(', ')}; its parts stay in the bucket until aborted (upload ids: dfs put --json)`);
  return { out, err };
}

/** The `--json` document of `dfs put`: the API's answer with every store's outcome, plus what the CLI did. */
export function putJson(r: PutResult): Record<string, unknown> {
  return { ...r.answer, key: r.key, size: r.size, mtime: r.mtime, results: r.results, file: r.file, via: r.via, ...(r.multipart ? { multipart: r.multipart } : {}) };
}

/** What `dfs rm` says. */
export function describeRm(name: string, { answer }: RmResult): Lines {
  const ok = answer.results.filter((x) => x.ok).map((x) => x.store);
  const failed = answer.results.filter((x) => !x.ok);
  const out = ok.length > 0 ? [`deleted ${clean(name)} from ${ok.join(', ')}`] : [];
  const err = [
    ...(ok.length === 0 ? [`dfs: ${clean(name)} was deleted from no store`] : []),
    ...failed.map((f) => `dfs: not deleted from ${f.store}: ${clean(f.error ?? 'failed')}`),
  ];
  return { out, err };
}

/** `copy    fileB.txt  server2 → server1  server2 newer (…)` / `delete  x.txt  from server1  deleted at …`. */
export function planLines(entries: PlanEntry[]): string[] {
  const cells = entries.map((e) => [e.action, clean(e.key), clean(e.action === 'copy' ? `${e.from} → ${e.to.join(',')}` : `from ${e.from.join(',')}`), clean(e.reason)]);
  const widths = [0, 1, 2].map((i) => Math.max(0, ...cells.map((c) => widthOf(c[i]!))));
  return cells.map((c) => c.map((cell, i) => (i < 3 ? padEnd(cell, widths[i]!) : cell)).join('  '));
}

/** The dry-run report like `rclone check`: counts first, then one line per step with its reason. */
export function describeReport(report: SyncReport, dryRun: boolean): Lines {
  const { counts } = report;
  const out = [
    plural(counts.match, 'matching file', 'matching files'),
    plural(report.entries.length, 'difference found', 'differences found'),
    ...(counts.differ > 0 ? [plural(counts.differ, 'file with different content', 'files with different content')] : []),
    ...Object.entries(counts.missing).map(([store, n]) => `${plural(n, 'file', 'files')} missing on ${clean(store)}`),
    ...planLines(report.entries),
  ];
  if (dryRun && report.entries.length > 0) {
    out.push(`dry run: nothing changed; dfs sync would make ${plural(counts.copies, 'copy', 'copies')} and ${plural(counts.deletes, 'delete', 'deletes')}`);
  }
  const err = report.unavailable.length > 0 ? [`dfs: warning: ${report.unavailable.join(', ')} did not answer; the plan covers only the stores that did`] : [];
  return { out, err };
}

/** The summary after applying: how many steps were done, and why the others failed. */
export function describeApplied(total: number, applied: Applied): Lines {
  const out = [`applied ${applied.done} of ${plural(total, 'step', 'steps')}${applied.failed.length > 0 ? `; ${applied.failed.length} failed` : ''}`];
  const err = applied.failed.map((f) => `failed  ${clean(f.key)}  ${clean(f.error)}`);
  if (applied.notAttempted > 0) err.push(`dfs: ${plural(applied.notAttempted, 'step was', 'steps were')} not attempted; run dfs sync again`);
  else if (applied.failed.length > 0) err.push('dfs: run dfs sync again to retry the failed steps');
  return { out, err };
}

/** The `--json` document of `dfs sync`: the dry-run report, `dryRun` as asked, and what was applied. */
export function syncJson(result: SyncResult, dryRun: boolean): Record<string, unknown> {
  return { ...result.report, dryRun, ...(result.applied ? { applied: result.applied } : {}) };
}

/** `13:30:05  server1 → server2  fileB.txt  replicate (modified)`; no route when the event has none. */
export function watchLine(e: JournalEvent): string {
  const to = e.to && e.to.length > 0 ? e.to.join(',') : undefined;
  const route = e.from && to ? `${e.from} → ${to}` : e.from ? e.from : to ? `→ ${to}` : undefined;
  return [formatClock(e.time), ...(route ? [clean(route)] : []), clean(e.key), `${clean(e.action)}${e.reason ? ` (${clean(e.reason)})` : ''}`].join('  ');
}

const LOCK_ACTIONS = new Set(['locked', 'queued', 'applied', 'unlocked', 'unlock-forced', 'expired']);

/**
 * `dfs watch`'s lines. Lock events read as what happened at the locked store:
 *   13:30:05  server1  fileB.txt  locked by ann until 2024-05-01 14:30 (editing)
 *   13:30:09  server1  fileB.txt  queued #3 (update by bob; locked by ann)
 *   13:31:00  server1  fileB.txt  applied 3/5 (unlock by ann)
 * A queued event does not name the lock's holder: the holder comes from the `locked` event
 * seen earlier in this watch, when there was one. Every other event is `watchLine`.
 */
export class WatchLines {
  private readonly holders = new Map<string, string>();

  line(e: JournalEvent): string {
    if (!LOCK_ACTIONS.has(e.action)) return watchLine(e);
    const store = e.to?.[0] ?? e.from ?? '?';
    const at = `${store}\n${e.key}`;
    const who = e.who !== undefined ? clean(e.who) : undefined;
    const reason = e.reason ?? '';
    let text: string;
    switch (e.action) {
      case 'locked': {
        if (e.who !== undefined) this.holders.set(at, e.who);
        const m = /^until (\S+?)(?:: ([\s\S]*))?$/.exec(reason);
        text = `locked${who ? ` by ${who}` : ''}${m ? ` until ${formatLocalTime(m[1]!)}${m[2] ? ` (${clean(m[2])})` : ''}` : reason ? ` (${clean(reason)})` : ''}`;
        break;
      }
      case 'queued': {
        const m = /^(?:(update)|delete(?: \(([\s\S]*?)\))?) held as #(\d+)/.exec(reason);
        const holder = this.holders.get(at);
        const what = m ? `${m[1] ? 'update' : `delete${m[2] ? ` (${clean(m[2])})` : ''}`}${who ? ` by ${who}` : ''}` : clean(reason);
        text = `queued${m ? ` #${m[3]}` : ''} (${what}${holder ? `; locked by ${clean(holder)}` : ''})`;
        break;
      }
      case 'applied': {
        const m = /held update (\d+\/\d+)/.exec(reason);
        text = `applied ${m ? m[1] : `(${clean(reason)})`}${who ? ` (unlock by ${who})` : ''}`;
        break;
      }
      case 'unlock-forced':
        text = `unlock forced${who ? ` by ${who}` : ''}${reason ? ` (${clean(reason)})` : ''}`;
        break;
      default: // unlocked, expired: the lock is gone
        this.holders.delete(at);
        text = `${e.action}${e.action === 'unlocked' && who ? ` by ${who}` : ''}${reason ? ` (${clean(reason)})` : ''}`;
    }
    return [formatClock(e.time), clean(store), clean(e.key), text].join('  ');
  }
}

/** What `dfs lock` says: `locked fileB.txt (#1) at server1 for ann until 2024-05-01 14:30`. */
export function describeLocked({ lock, index }: LockResult): Lines {
  const held = heldCount(lock);
  return {
    out: [
      `locked ${clean(lock.key)}${index !== undefined ? ` (#${index})` : ''} at ${clean(lock.store)} for ${clean(lock.holder)} until ${formatLocalTime(new Date(lock.expires).toISOString())}` +
        `${held > 0 ? `; ${plural(held, 'update', 'updates')} held so far` : ''}`,
    ],
    err: [`others' writes into ${clean(lock.store)}'s copy are held until dfs unlock ${clean(lock.key)}; dfs lock again renews it`],
  };
}

/** The `--json` document of `dfs lock`: the lock as the API answered it, and the index it was named by. */
export function lockJson({ lock, index }: LockResult): Record<string, unknown> {
  return { ...lock, ...(index !== undefined ? { index } : {}) };
}

/** What `dfs unlock` says: what became of the held updates, or that the unlock goes on by itself. */
export function describeUnlocked({ answer, lock, index, forced }: UnlockResult): Lines {
  const name = `${clean(answer.key)}${index !== undefined ? ` (#${index})` : ''} at ${clean(answer.store)}`;
  const whose = forced ? `, ${clean(lock.holder)}'s lock taken over` : '';
  if (!answer.done) {
    return {
      out: [`unlocking ${name}${whose} goes on by itself: ${answer.applied} of ${plural(answer.total, 'held update', 'held updates')} applied so far`],
      err: ['dfs locks shows how far it got; dfs watch shows each update as it is applied'],
    };
  }
  const what =
    answer.discarded !== undefined
      ? `${plural(answer.discarded, 'held update', 'held updates')} dropped`
      : answer.total === 0
        ? 'no held updates'
        : `${plural(answer.total, 'held update', 'held updates')} applied`;
  return { out: [`unlocked ${name}${whose}: ${what}`], err: [] };
}

/** The `--json` document of `dfs unlock`: the API's last answer plus what the CLI did. */
export function unlockJson({ answer, lock, index, forced, waited }: UnlockResult): Record<string, unknown> {
  return { ...answer, holder: lock.holder, forced, waited, ...(index !== undefined ? { index } : {}) };
}

/** The `dfs locks` table: name, store, holder, since, expiry, updates held, reason. */
export function lockTable(locks: LockInfo[], now = Date.now()): string[] {
  if (locks.length === 0) return [];
  const rows = [
    ['NAME', 'STORE', 'HOLDER', 'SINCE', 'EXPIRES', 'HELD', 'REASON'],
    ...locks.map((l) => [
      clean(l.key),
      clean(l.store),
      clean(l.holder),
      formatLocalTime(l.since),
      `${formatLocalTime(new Date(l.expires).toISOString())}${l.expires <= now ? ' (expired)' : ''}`,
      `${heldCount(l)}${l.draining ? ' (unlocking)' : ''}`,
      clean(l.reason ?? ''),
    ]),
  ];
  const widths = [0, 1, 2, 3, 4, 5].map((i) => Math.max(...rows.map((r) => widthOf(r[i]!))));
  return rows.map((r) => r.map((cell, i) => (i < 6 ? padEnd(cell, widths[i]!) : cell)).join('  ').trimEnd());
}

const scopeWords = (scope: string) => (scope === 'read' ? 'read-only' : scope === 'write' ? 'read and write' : clean(scope));

/**
 * What `dfs token create` says. The token goes to stdout, alone, so `$(dfs token create ci)`
 * captures it; the words go to stderr and never repeat it (stderr often ends up in logs).
 */
export function describeTokenCreated(t: CreatedToken, configPath: string): Lines {
  const prefix = `dfs_${clean(t.name)}_`;
  return {
    out: [clean(t.token)],
    err: [
      `created token ${clean(t.name)} (${scopeWords(t.scope)}); it is shown only now, above, and cannot be read back`,
      `use it: export DFS_TOKEN=${prefix}… (the whole token), or put it as "token" in ${clean(configPath)} (then chmod 600 it)`,
    ],
  };
}

/** The `dfs token list` table: name, scope, when made and by whom, in the server's order. */
export function tokenTable(tokens: TokenInfo[]): string[] {
  if (tokens.length === 0) return [];
  const rows = [['NAME', 'SCOPE', 'CREATED', 'BY'], ...tokens.map((t) => [clean(t.name), clean(t.scope), formatTime(t.created), clean(t.createdBy)])];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => widthOf(r[i]!))));
  return rows.map((r) => r.map((cell, i) => (i < 3 ? padEnd(cell, widths[i]!) : cell)).join('  '));
}

/** What `dfs token revoke` says. */
export function describeTokenRevoked(name: string): Lines {
  return { out: [`revoked token ${clean(name)}; requests with it are refused within seconds`], err: [] };
}
