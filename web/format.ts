/** How the page writes sizes, times and file names. Pure, shared by its views and tested alone. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1.5 KiB`, `512 B`: binary units as `dfs ls` prints them. */
export function formatSize(bytes: number): string {
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < UNITS.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${UNITS[u]}`;
}

/** `2026-03-04 10:05:07` in UTC, as an ISO time sorts and reads at once; '' when not a time. */
export function formatTime(iso: string | number | undefined): string {
  if (iso === undefined) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace('T', ' ').slice(0, 19);
}

/** The name a version is saved under, as `dfs get` saves it: `fileB.txt` of server2 → `fileB.server2.txt`. */
export function versionFileName(key: string, store: string): string {
  const base = key.split('/').pop() || key;
  const dot = base.lastIndexOf('.');
  return dot > 0 ? `${base.slice(0, dot)}.${store}${base.slice(dot)}` : `${base}.${store}`;
}

/** The name a token stands for (`dfs_<name>_<secret>`, lib/tokens.ts), or undefined when it is not shaped like one. */
export function tokenName(token: string): string | undefined {
  return /^dfs_([a-z0-9][a-z0-9-]{0,39})_[A-Za-z0-9_-]{43}$/.exec(token.trim())?.[1];
}
