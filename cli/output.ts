/**
 * What the user reads. Pure functions from results to text, so the wording is tested without
 * running anything. Human text is short; `--json` prints the API answer plus what the CLI did.
 */
import type { Content, ReadAnswer } from '../lib/types';
import type { CliError } from './exit';
import type { GetResult } from './get';
import { formatBytes } from './progress';

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
    err.push(`warning: ${answer.unavailable.join(', ')} did not answer; the result covers only the stores that did`);
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
    const width = Math.max(...saved.map((f) => display(f.shown).length));
    const sizeWidth = Math.max(...saved.map((f) => formatBytes(f.size).length));
    for (const f of saved) {
      out.push(
        `  ${display(f.shown).padEnd(width)}  ${formatBytes(f.size).padStart(sizeWidth)}  ${formatTime(f.mtime)}  ${f.stores.join('+')}${f.newest ? '  (newest)' : ''}`,
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
