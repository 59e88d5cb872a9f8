import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { isEmpty, loadSeed, SEED_TIME } from '../../seed/load';
import type { Store } from '../../lib/stores';
import { parseMtime } from '../../lib/stamps';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';

const TEXTS: Record<string, Record<string, string>> = {
  server1: {
    'fileA.txt': 'This is the original version of file A.',
    'fileB.txt': 'This is version 1 of file B.',
  },
  server2: {
    'fileA.txt': 'This is the original version of file A.',
    'fileB.txt': 'This is version 2 of file B, which is more recent.',
    'fileC.txt': 'This file only exists on SERVER 2.',
  },
};

let s3: LocalS3 | undefined;
let stores: Store[];

beforeEach(async () => {
  s3 = await startS3rver(['seed-server1', 'seed-server2', 'seed-server3']);
  stores = ['server1', 'server2', 'server3'].map((name) => ({ name, bucket: `seed-${name}`, s3: s3!.client }));
});

afterEach(async () => {
  await s3?.stop();
  s3 = undefined;
});

async function keys(store: Store): Promise<string[]> {
  const page = await store.s3.send(new ListObjectsV2Command({ Bucket: store.bucket }));
  return (page.Contents ?? []).map((o) => o.Key!).sort();
}

async function read(store: Store, key: string) {
  const got = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
  return { text: await got.Body!.transformToString(), mtime: parseMtime(got.Metadata?.mtime)!, type: got.ContentType, etag: got.ETag };
}

describe('loadSeed', () => {
  it('puts the sample files of DESIGN.md, byte for byte, into the stores that have a seed folder', async () => {
    const loaded = await loadSeed(stores);

    expect(loaded.map((f) => `${f.store}/${f.key}`)).toEqual([
      'server1/fileA.txt',
      'server1/fileB.txt',
      'server2/fileA.txt',
      'server2/fileB.txt',
      'server2/fileC.txt',
    ]);
    for (const [name, files] of Object.entries(TEXTS)) {
      const store = stores.find((s) => s.name === name)!;
      expect(await keys(store)).toEqual(Object.keys(files).sort());
      for (const [key, text] of Object.entries(files)) {
        const got = await read(store, key);
        expect(got.text).toBe(text);
        expect(got.type).toMatch(/^text\/plain/);
      }
    }
    // A store without a seed folder stays empty.
    expect(await keys(stores[2]!)).toEqual([]);
  });

  it('gives identical copies the same mtime and makes server2 fileB the newer one', async () => {
    await loadSeed(stores);
    const [s1, s2] = stores as [Store, Store];

    const a1 = await read(s1, 'fileA.txt');
    const a2 = await read(s2, 'fileA.txt');
    expect(a1.mtime).toBe(SEED_TIME);
    expect(a2.mtime).toBe(a1.mtime);
    expect(a2.etag).toBe(a1.etag);

    const b1 = await read(s1, 'fileB.txt');
    const b2 = await read(s2, 'fileB.txt');
    expect(b1.mtime).toBe(SEED_TIME);
    expect(b2.mtime).toBeGreaterThan(b1.mtime);
    expect((await read(s2, 'fileC.txt')).mtime).toBe(SEED_TIME);
  });

  it('is idempotent: a second load leaves the same objects', async () => {
    await loadSeed(stores);
    const before = await Promise.all(stores.map(async (s) => [await keys(s), await etagsAndMtimes(s)]));
    await loadSeed(stores);
    const after = await Promise.all(stores.map(async (s) => [await keys(s), await etagsAndMtimes(s)]));
    expect(after).toEqual(before);
  });

  it('with ifEmpty loads into empty stores only and leaves changed files alone', async () => {
    expect(await isEmpty(stores)).toBe(true);
    expect(await loadSeed(stores, { ifEmpty: true })).toHaveLength(5);
    expect(await isEmpty(stores)).toBe(false);

    const s1 = stores[0]!;
    await s1.s3.send(new PutObjectCommand({ Bucket: s1.bucket, Key: 'fileA.txt', Body: 'edited' }));
    expect(await loadSeed(stores, { ifEmpty: true })).toEqual([]);
    expect((await read(s1, 'fileA.txt')).text).toBe('edited');
  });
});

describe('a seeded s3rver folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'seed-restart-'));
  const buckets = ['keep-server1', 'keep-server2'];
  const on = (server: LocalS3): Store[] => buckets.map((bucket, i) => ({ name: `server${i + 1}`, bucket, s3: server.client }));
  let server: LocalS3 | undefined;

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps its objects when s3rver restarts on it with the same buckets, as the local stack does', async () => {
    server = await startS3rver(buckets, dir);
    await loadSeed(on(server));
    const before = await Promise.all(on(server).map(etagsAndMtimes));
    await server.stop();

    server = await startS3rver(buckets, dir);
    expect(await Promise.all(on(server).map(etagsAndMtimes))).toEqual(before);
    expect(await isEmpty(on(server))).toBe(false);
  });
});

describe('isEmpty', () => {
  it('is false as soon as any one store holds an object', async () => {
    const s3store = stores[2]!;
    await s3store.s3.send(new PutObjectCommand({ Bucket: s3store.bucket, Key: 'x', Body: 'x' }));
    expect(await isEmpty(stores)).toBe(false);
    expect(await isEmpty(stores.slice(0, 2))).toBe(true);
  });
});

async function etagsAndMtimes(store: Store) {
  const out: Record<string, [string | undefined, string | undefined]> = {};
  for (const key of await keys(store)) {
    const h = await store.s3.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
    out[key] = [h.ETag, h.Metadata?.mtime];
  }
  return out;
}
