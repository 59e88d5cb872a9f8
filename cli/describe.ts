/**
 * What the user reads for cat, stat and the transfers of several files. Pure functions from
 * results to lines, like output.ts (which holds the one-file commands).
 */
import type { ReadAnswer } from '../lib/types';
import type { CatResult } from './cat';
import type { Skipped } from './get';
import type { PrefixResult } from './get-many';
import { formatDuration } from './meter';
import { clean, formatTime, type Lines } from './output';
import { formatBytes } from './progress';
import type { ManyResult, Upload } from './put-many';
import { padEnd, padStart, widthOf } from './width';

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const unavailableWarning = (answer: ReadAnswer) =>
  answer.unavailable.length > 0 ? [`dfs: warning: ${answer.unavailable.map(clean).join(', ')} did not answer; the result covers only the stores that did`] : [];

/** Aligned columns, by display width; `right` says which columns align right. */
export function table(rows: string[][], right: number[] = []): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => widthOf(r[i] ?? ''))));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : right.includes(i) ? padStart(cell, widths[i]!) : padEnd(cell, widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** What `dfs cat` says on stderr: nothing when it wrote; why it did not otherwise. */
export function describeCat(name: string, r: CatResult): Lines {
  const err = unavailableWarning(r.answer);
  if (r.answer.status === 'NOT_FOUND') err.push(`dfs: ${clean(name)}: not found on any store${r.answer.unavailable.length > 0 ? ' that answered' : ''}`);
  else if (r.answer.status === 'DIFFERENT' && !r.written) {
    const versions = r.answer.versions;
    err.push(`dfs: ${clean(name)} differs between stores (${versions.length} versions); nothing written to stdout`);
    for (const v of versions) err.push(`  ${v.stores.join('+')}  ${formatBytes(v.size)}  ${formatTime(v.mtime)}${v.newest ? '  (newest)' : ''}`);
    err.push(`dfs: pick one with --resolve newest, or --resolve ${[...new Set(versions.flatMap((v) => v.stores))].sort().join('|')}`);
  }
  return { out: [], err };
}

/** `dfs stat`: the answer of GET ?meta=1, one row per store. */
export function describeStat(name: string, answer: ReadAnswer): Lines {
  const err = unavailableWarning(answer);
  if (answer.status === 'NOT_FOUND') {
    err.push(`dfs: ${clean(name)}: not found on any store${answer.unavailable.length > 0 ? ' that answered' : ''}`);
    return { out: [], err };
  }
  const head = ['STORE', 'SIZE', 'MODIFIED', 'ETAG', 'VERSION'];
  if (answer.status === 'SINGLE') {
    const stores = answer.copies.map((c) => c.store);
    const rows = answer.copies.map((c) => [clean(c.store), formatBytes(c.size), formatTime(c.mtime), clean(c.etag), '1']);
    return { out: [`${clean(name)}: SINGLE, ${stores.length > 1 ? `identical on ${stores.length} stores` : `only on ${clean(stores[0] ?? '?')}`}`, ...table([head, ...rows], [1])], err };
  }
  const rows = answer.versions.flatMap((v, i) => v.stores.map((s) => [clean(s), formatBytes(v.size), formatTime(v.mtime), clean(v.etag), `${i + 1}${v.newest ? ' (newest)' : ''}`]));
  return { out: [`${clean(name)}: DIFFERENT, ${answer.versions.length} versions`, ...table([head, ...rows], [1])], err };
}

/** `dfs put --dry-run`: what would be stored, and under which names. */
export function describePutPlan(uploads: Upload[], to: string): Lines {
  const bytes = uploads.reduce((n, u) => n + u.size, 0);
  const rows = uploads.map((u) => [clean(u.file), '→', clean(u.key), formatBytes(u.size)]);
  return {
    out: [...(rows.length > 0 ? table(rows) : []), `dry run: would store ${plural(uploads.length, 'file')} (${formatBytes(bytes)}) on ${to === 'all' ? 'every store' : clean(to)}; nothing sent`],
    err: [],
  };
}

/** The summary of a put of several files: how many, how much, how fast, and what failed or was left. */
export function describePutMany(r: ManyResult, seconds: number, interrupted: boolean): Lines {
  const stored = r.outcomes.filter((o) => o.result && o.result.results.some((x) => x.ok));
  const bytes = stored.reduce((n, o) => n + o.upload.size, 0);
  const aborted = r.outcomes.filter((o) => o.error?.exitCode === 130);
  const failed = r.outcomes.filter((o) => (o.error && o.error.exitCode !== 130) || (o.result && !o.result.results.some((x) => x.ok)));
  const partly = r.outcomes.filter((o) => o.result && o.result.results.some((x) => !x.ok) && o.result.results.some((x) => x.ok));
  const speed = seconds > 0 ? `, ${formatBytes(Math.round(bytes / seconds))}/s` : '';
  const out = [`stored ${plural(stored.length, 'file')} (${formatBytes(bytes)}) in ${formatDuration(seconds)}${speed}`];
  const err: string[] = [];
  for (const o of failed) err.push(`dfs: ${clean(o.upload.file)}: ${clean(o.error?.message ?? o.result!.results.map((x) => `${x.store}: ${x.error ?? 'failed'}`).join('; '))}`);
  for (const o of partly) err.push(`dfs: ${clean(o.upload.key)} not stored on ${o.result!.results.filter((x) => !x.ok).map((x) => x.store).join(', ')}; replication or dfs sync copies it once they are reachable`);
  if (interrupted) {
    err.push(
      `dfs: interrupted: ${plural(stored.length, 'file')} stored, ${aborted.length} stopped in flight (uploads in parts aborted; a small one may have landed, dfs ls shows), ${plural(r.notStarted.length, 'file')} not started; run the same dfs put again to finish`,
    );
  } else if (r.notStarted.length > 0) err.push(`dfs: stopped: ${plural(r.notStarted.length, 'file')} not started`);
  return { out, err };
}

function skippedLines(skipped: Skipped[]): string[] {
  return skipped.map((s) =>
    s.upToDate === true
      ? `${clean(s.shown.replace(/^\.\//, ''))}: already up to date`
      : `skipped ${clean(s.shown.replace(/^\.\//, ''))}: it exists${s.upToDate === false ? ' and differs' : ' (not compared: a multipart upload)'}; --force replaces it`,
  );
}

/** What `get --skip-existing` adds: files left alone and why. */
export const describeSkipped = (skipped: Skipped[] | undefined): Lines => ({ out: skippedLines(skipped ?? []), err: [] });

/** The summary of `dfs get PREFIX/`. */
export function describeGetPrefix(prefix: string, r: PrefixResult, seconds: number, interrupted: boolean): Lines {
  if (r.listed === 0) return { out: [], err: [`dfs: no files starting with ${clean(prefix)}`] };
  const ok = r.outcomes.filter((o) => o.result);
  const files = ok.flatMap((o) => o.result!.saved);
  const bytes = files.reduce((n, f) => n + f.size, 0);
  const differ = ok.filter((o) => o.result!.answer.status === 'DIFFERENT' && o.result!.saved.length > 1);
  const out = [
    ...skippedLines([...r.skipped, ...ok.flatMap((o) => o.result!.skipped ?? [])]),
    `saved ${plural(files.length, 'file')} (${formatBytes(bytes)}) of ${plural(r.listed, 'name')} under ${clean(prefix)} in ${formatDuration(seconds)}`,
  ];
  const err: string[] = [];
  if (r.unavailable.length > 0) err.push(`dfs: warning: ${r.unavailable.map(clean).join(', ')} did not answer; the listing covers only the stores that did`);
  for (const o of differ) err.push(`dfs: ${clean(o.name)} differs between stores: saved ${o.result!.saved.map((f) => clean(f.shown)).join(', ')} (--resolve newest keeps one)`);
  for (const o of r.outcomes) if (o.error && o.error.exitCode !== 130) err.push(`dfs: ${clean(o.name)}: ${clean(o.error.message)}`);
  if (interrupted) err.push(`dfs: interrupted: ${plural(files.length, 'file')} saved, the one in progress removed (no partial file left), ${plural(r.notStarted.length, 'name')} not fetched`);
  return { out, err };
}
