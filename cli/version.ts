/**
 * `dfs version`: which dfs this is. The package version, the commit of the checkout it runs
 * from (read from .git without running git, absent in an install from a tarball), when this
 * bundle was built (bin/dfs.js builds it from cli/ on first run), and the Node it runs on.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { version } from '../package.json';

export interface BuildInfo {
  version: string;
  commit: string | null;
  built: string | null;
  node: string;
  platform: string;
}

export function buildInfo(env: Record<string, string | undefined>, bundle: string | undefined = typeof __filename === 'string' ? __filename : undefined): BuildInfo {
  return {
    version,
    commit: env.DFS_ROOT ? gitCommit(join(env.DFS_ROOT, '.git')) : null,
    built: bundle ? mtimeOf(bundle) : null,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** HEAD's commit: a detached hash, or the ref it names (loose, else packed); null when unreadable. */
export function gitCommit(gitDir: string): string | null {
  try {
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    const ref = /^ref: (\S+)$/.exec(head)?.[1];
    if (!ref) return /^[0-9a-f]{40}$/.test(head) ? head : null;
    try {
      return readFileSync(join(gitDir, ref), 'utf8').trim();
    } catch {
      const packed = readFileSync(join(gitDir, 'packed-refs'), 'utf8');
      return packed.split('\n').find((l) => l.endsWith(` ${ref}`))?.split(' ')[0] ?? null;
    }
  } catch {
    return null;
  }
}

function mtimeOf(path: string): string | null {
  try {
    return statSync(path).mtime.toISOString();
  } catch {
    return null;
  }
}

/** `dfs 0.1.0 (commit 1a2b3c4, built 2026-12-01 18:40Z) node v20.19.0 linux-x64` */
export function describeVersion(b: BuildInfo): string {
  const built = b.built ? b.built.replace('T', ' ').replace(/:\d\d\.\d+Z$/, 'Z') : 'unknown';
  return `dfs ${b.version} (commit ${b.commit ? b.commit.slice(0, 10) : 'unknown'}, built ${built})\nnode ${b.node} ${b.platform}`;
}
