/**
 * The listing as the page shows it: every file with its index in the name-sorted listing (the
 * `#` of `dfs ls`) and its locks, then filtered, sorted and cut into pages. Pure.
 */
import type { FileEntry, LockInfo } from '../client/answers';

export interface Row extends FileEntry {
  /** Position in the name-sorted listing, 0..n-1, whatever the filter and sort. */
  index: number;
  locks: LockInfo[];
}

export type SortKey = 'name' | 'size' | 'mtime';
export interface Sort {
  key: SortKey;
  descending: boolean;
}

export const PAGE_SIZE = 100;

/** Rows of a listing in the API's order (by name), each with its index and the locks on its key. */
export function rowsOf(files: FileEntry[], locks: LockInfo[]): Row[] {
  const byKey = new Map<string, LockInfo[]>();
  for (const l of locks) byKey.set(l.key, [...(byKey.get(l.key) ?? []), l]);
  return files.map((f, index) => ({ ...f, index, locks: byKey.get(f.name) ?? [] }));
}

/** Rows whose name holds `filter`, ignoring case; a filter of blanks keeps every row. */
export function filterRows(rows: Row[], filter: string): Row[] {
  const f = filter.trim().toLowerCase();
  return f ? rows.filter((r) => r.name.toLowerCase().includes(f)) : rows;
}

const compare: Record<SortKey, (a: Row, b: Row) => number> = {
  name: (a, b) => a.index - b.index,
  size: (a, b) => a.size - b.size || a.index - b.index,
  mtime: (a, b) => Date.parse(a.mtime) - Date.parse(b.mtime) || a.index - b.index,
};

/** A sorted copy; ties keep name order, so a sort is stable whatever the direction. */
export function sortRows(rows: Row[], sort: Sort): Row[] {
  const by = compare[sort.key];
  return [...rows].sort(sort.descending ? (a, b) => by(b, a) : by);
}

/** Page `page` (0-based, clamped into range) of `rows`, and how many pages there are (at least 1). */
export function pageOf<T>(rows: T[], page: number, size = PAGE_SIZE): { rows: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(rows.length / size));
  const p = Math.min(Math.max(0, Math.trunc(page) || 0), pages - 1);
  return { rows: rows.slice(p * size, (p + 1) * size), page: p, pages };
}

/** A click on a column header: that column ascending, or the other way round when it is the column already. */
export function nextSort(current: Sort, key: SortKey): Sort {
  return current.key === key ? { key, descending: !current.descending } : { key, descending: false };
}

/** Every store the listing names, in the order the API gives them, unavailable ones included. */
export function storesOf(files: FileEntry[], unavailable: string[]): string[] {
  const names = new Set<string>();
  for (const f of files.slice(0, 50)) for (const s of Object.keys(f.stores)) names.add(s);
  for (const s of unavailable) names.add(s);
  return [...names].sort();
}
