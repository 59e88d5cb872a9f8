import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Store } from '../lib/stores';
import { writeMetadata } from '../lib/stamps';

/** The seed's files: one folder per store, named after it, beside this file. */
export const SEED_DIR = __dirname;

/**
 * The seed's logical mtime (x-amz-meta-mtime): fixed, so every load gives identical objects.
 * Copies of the same content carry the same mtime; a differing copy is newer by its offset.
 */
export const SEED_TIME = Date.UTC(2024, 0, 15, 9, 0, 0);
const HOUR = 3600_000;
const NEWER: Record<string, number> = {
  // server2's fileB is "version 2, which is more recent" (DESIGN.md "Sample data").
  'server2/fileB.txt': HOUR,
};

export interface SeedFile {
  store: string;
  key: string;
  path: string;
  mtimeMs: number;
}

export interface SeedOptions {
  /** Folder holding `<store>/<key>` files. Default: SEED_DIR. */
  dir?: string;
  /** Load only when every store is empty (see isEmpty). Default: false, load unconditionally. */
  ifEmpty?: boolean;
}

/**
 * The seed files of the given stores, sorted by store then key. A store without a folder
 * gets nothing; a folder without a store is ignored.
 */
export function seedFiles(storeNames: string[], dir: string = SEED_DIR): SeedFile[] {
  const files: SeedFile[] = [];
  for (const store of storeNames) {
    const folder = join(dir, store);
    if (!existsDir(folder)) continue;
    for (const key of readdirSync(folder).sort()) {
      const path = join(folder, key);
      if (!statSync(path).isFile()) continue;
      files.push({ store, key, path, mtimeMs: SEED_TIME + (NEWER[`${store}/${key}`] ?? 0) });
    }
  }
  return files;
}

/**
 * Puts the seed into the stores (PutObject, stamped, text/plain). Loading twice
 * leaves the same objects as loading once. Returns what it put; with `ifEmpty`, nothing
 * when some store already holds an object.
 */
export async function loadSeed(stores: Store[], opts: SeedOptions = {}): Promise<SeedFile[]> {
  if (opts.ifEmpty && !(await isEmpty(stores))) return [];
  const byName = new Map(stores.map((s) => [s.name, s]));
  const files = seedFiles([...byName.keys()], opts.dir);
  await Promise.all(
    files.map((f) => {
      const store = byName.get(f.store)!;
      const body = readFileSync(f.path);
      // Stamped like an API write made at its mtime; equal files share one identity, so the
      // copies of fileA are one write, and loading twice gives identical objects.
      const id = createHash('sha256').update(f.key).update('\0').update(body).digest('hex').slice(0, 24);
      return store.s3.send(
        new PutObjectCommand({
          Bucket: store.bucket,
          Key: f.key,
          Body: body,
          ContentType: 'text/plain; charset=utf-8',
          Metadata: writeMetadata({ id, madeMs: f.mtimeMs, who: 'seed' }, f.mtimeMs),
        }),
      );
    }),
  );
  return files;
}

/** True when no store holds any object. Throws the SDK's error when a store cannot be listed. */
export async function isEmpty(stores: Store[]): Promise<boolean> {
  const counts = await Promise.all(
    stores.map(async (s) => {
      const page = await s.s3.send(new ListObjectsV2Command({ Bucket: s.bucket, MaxKeys: 1 }));
      return page.KeyCount ?? page.Contents?.length ?? 0;
    }),
  );
  return counts.every((n) => n === 0);
}

function existsDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
