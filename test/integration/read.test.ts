import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from '../../lib/read';
import { WINDOW_BYTES } from '../../lib/bytecompare';
import { ChangedWhileReadingError, compareBytes } from '../../lib/compare';
import { createS3Client } from '../../lib/config';
import { headObject, type Store } from '../../lib/stores';
import { AllStoresUnavailableError } from '../../lib/errors';
import { formatMtime } from '../../lib/stamps';
import { closedPort, startS3rver, type LocalS3 } from '../helpers/s3rver';
import { makeDeps } from '../helpers/deps';

let s3: LocalS3;
let stores: Store[];
const MiB = 1024 * 1024;

beforeAll(async () => {
  s3 = await startS3rver(['server1', 'server2', 'server3']);
  stores = ['server1', 'server2'].map((name) => ({ name, bucket: name, s3: s3.client }));
  await put('server1', 'fileA.txt', 'This is the original version of file A.', 1000);
  await put('server2', 'fileA.txt', 'This is the original version of file A.', 1000);
  await put('server1', 'fileB.txt', 'This is version 1 of file B.', 1000);
  await put('server2', 'fileB.txt', 'This is version 2 of file B, which is more recent.', 5000);
  await put('server2', 'fileC.txt', 'This file only exists on SERVER 2.', 1000);
});
afterAll(() => s3?.stop());

async function put(bucket: string, key: string, body: string | Buffer, mtime: number, client: S3Client = s3.client) {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { mtime: formatMtime(mtime) } }));
}

const text = (c: unknown) => Buffer.from((c as { base64: string }).base64, 'base64').toString();

describe('readFile on s3rver: the four classic cases', () => {
  it('answers SINGLE for identical copies, reading the body once', async () => {
    const deps = makeDeps(stores);
    const a = await readFile(deps, 'fileA.txt');
    expect(a.status).toBe('SINGLE');
    if (a.status !== 'SINGLE') return;
    expect(a.copies.map((c) => c.store)).toEqual(['server1', 'server2']);
    expect(text(a.content)).toBe('This is the original version of file A.');
    expect(deps.meter!.bodyBytes).toBe(Buffer.byteLength('This is the original version of file A.'));
  });

  it('answers DIFFERENT with both versions, server2 newest', async () => {
    const a = await readFile(makeDeps(stores), 'fileB.txt');
    expect(a.status).toBe('DIFFERENT');
    if (a.status !== 'DIFFERENT') return;
    expect(a.versions.map((v) => [v.stores, v.newest, text(v.content)])).toEqual([
      [['server1'], false, 'This is version 1 of file B.'],
      [['server2'], true, 'This is version 2 of file B, which is more recent.'],
    ]);
    expect(a.versions[1]!.mtime).toBe(new Date(5000).toISOString());
  });

  it('answers SINGLE for a file on one store only', async () => {
    const a = await readFile(makeDeps(stores), 'fileC.txt');
    expect(a).toMatchObject({ status: 'SINGLE', copies: [{ store: 'server2', size: 34 }], unavailable: [] });
  });

  it('answers NOT_FOUND when no store has it', async () => {
    expect(await readFile(makeDeps(stores), 'nosuch.txt')).toEqual({ status: 'NOT_FOUND', key: 'nosuch.txt', unavailable: [] });
  });

  it('round-trips keys with spaces, plus, percent and unicode', async () => {
    const key = 'dir one/a+b %20 ünï €.txt';
    await put('server1', key, 'x', 1);
    await put('server2', key, 'x', 1);
    expect(await readFile(makeDeps(stores), key)).toMatchObject({ status: 'SINGLE', key });
  });
});

describe('readFile with a store that is down', () => {
  let down: Store;
  beforeAll(async () => {
    down = { name: 'server2', bucket: 'server2', s3: createS3Client({ endpoint: `http://127.0.0.1:${await closedPort()}` }) };
  });
  afterAll(() => down.s3.destroy());

  it('still answers from the store that is up and names the other unavailable', async () => {
    const a = await readFile(makeDeps([stores[0]!, down]), 'fileB.txt');
    expect(a).toMatchObject({ status: 'SINGLE', copies: [{ store: 'server1' }], unavailable: ['server2'] });
  });

  it('says NOT_FOUND only for the stores that answered', async () => {
    expect(await readFile(makeDeps([stores[0]!, down]), 'fileC.txt')).toEqual({
      status: 'NOT_FOUND', key: 'fileC.txt', unavailable: ['server2'],
    });
  });

  it('throws AllStoresUnavailableError when no store answers', async () => {
    await expect(readFile(makeDeps([{ ...down, name: 'server1' }, down]), 'fileA.txt')).rejects.toBeInstanceOf(AllStoresUnavailableError);
  });
});

describe('large objects', () => {
  const big = randomBytes(20 * MiB);
  beforeAll(async () => {
    for (const [bucket, partSize] of [['server1', 5 * MiB], ['server2', 8 * MiB]] as const) {
      await new Upload({
        client: s3.client,
        params: { Bucket: bucket, Key: 'big.bin', Body: big, Metadata: { mtime: '1' } },
        partSize,
      }).done();
    }
  });

  it('answers SINGLE for a 20 MiB object uploaded with different part sizes, with a presigned URL', async () => {
    const deps = makeDeps(stores);
    const a = await readFile(deps, 'big.bin');
    expect(a.status).toBe('SINGLE');
    if (a.status !== 'SINGLE' || !a.content || !('url' in a.content)) throw new Error('expected a URL');
    expect(deps.meter!.bodyBytes).toBe(0);
    const res = await fetch(a.content.url);
    expect(res.status).toBe(200);
    const got = Buffer.from(await res.arrayBuffer());
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
  });

  it('compares 20 MiB byte for byte as two streams, one GET per copy, and stops at the first difference', async () => {
    const changed = Buffer.from(big);
    changed[15 * MiB + 7] = changed[15 * MiB + 7]! ^ 0xff;
    await put('server3', 'big.bin', changed, 1);
    const all = [...stores, { name: 'server3', bucket: 'server3', s3: s3.client }];
    const deps = makeDeps(all);
    const [h1, h2, h3] = await Promise.all(all.map((s) => headObject(s, 'big.bin')));

    expect(await compareBytes(deps, 'big.bin', h1!, h2!)).toEqual({ same: true, by: 'bytes' });
    expect(deps.meter!.bodyBytes).toBe(2 * 20 * MiB);

    deps.meter!.bodyBytes = 0;
    expect(await compareBytes(deps, 'big.bin', h1!, h3!)).toEqual({
      same: false, reason: `Contents differ (server1 vs server3, from byte ${15 * MiB + 7})`,
    });
    // Up to the difference on both sides, plus at most what each side held ahead of the compare.
    expect(deps.meter!.bodyBytes).toBeLessThanOrEqual(2 * (15 * MiB + 2 * WINDOW_BYTES));
  });

  it('notices a copy replaced between its HEAD and its compare (If-Match on the S3-like s3rver)', async () => {
    const deps = makeDeps(stores);
    const [h1, h2] = await Promise.all(stores.map((s) => headObject(s, 'big.bin')));
    const replacement = Buffer.from(big);
    replacement[0] = replacement[0]! ^ 1;
    await put('server2', 'big.bin', replacement, 2);

    await expect(compareBytes(deps, 'big.bin', h1!, h2!)).rejects.toBeInstanceOf(ChangedWhileReadingError);
  });
});
