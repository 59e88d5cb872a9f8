import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { readFile } from '../../lib/read';
import { listFiles } from '../../lib/listing';
import { completeUpload, putFile, signParts, startUpload } from '../../lib/upload';
import { deleteFile } from '../../lib/delete';
import { readTombstone } from '../../lib/tombstones';
import { createS3Client } from '../../lib/config';
import { headObject, type Store } from '../../lib/stores';
import { AllStoresUnavailableError } from '../../lib/errors';
import type { Deps } from '../../lib/deps';
import { handler } from '../../handlers/api';
import { closedPort, startS3rver, type LocalS3 } from '../helpers/s3rver';
import { AUTH, putTestTokens } from '../helpers/apigw';
import { makeDeps } from '../helpers/deps';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

const NAMES = ['server1', 'server2', 'server3'] as const;
let s3: LocalS3;
/** A client on a loopback port where nothing listens: every store using it is down. */
let nowhere: S3Client;

beforeAll(async () => {
  s3 = await startS3rver([...NAMES, 'control']);
  nowhere = createS3Client({ endpoint: `http://127.0.0.1:${await closedPort()}` });
  for (const name of NAMES) {
    await put(name, 'seed/everywhere.txt', 'the same everywhere');
    await put(name, `seed/only-${name}.txt`, `only on ${name}`);
  }
  // The API reads its tokens from the control bucket.
  await putTestTokens((key, text) => s3.client.send(new PutObjectCommand({ Bucket: 'control', Key: key, Body: text })));
});
afterAll(async () => {
  nowhere?.destroy();
  await s3?.stop();
});

async function put(bucket: string, key: string, body: string) {
  await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { mtime: '1' } }));
}

async function text(bucket: string, key: string): Promise<string> {
  const res = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return res.Body!.transformToString();
}

/** Three stores of which only `live` answers; the control bucket stays reachable. */
function onlyUp(live: string): Deps {
  const stores: Store[] = NAMES.map((name) => ({ name, bucket: name, s3: name === live ? s3.client : nowhere }));
  return makeDeps(stores, { control: { bucket: 'control', s3: s3.client } });
}

const others = (live: string) => NAMES.filter((n) => n !== live);
const base64 = (s: string) => Buffer.from(s).toString('base64');

describe.each(NAMES)('three stores, only %s up', (live) => {
  const down = others(live);

  it('reads a file held everywhere as SINGLE from the live store, naming the other two unavailable', async () => {
    expect(await readFile(onlyUp(live), 'seed/everywhere.txt')).toEqual({
      status: 'SINGLE',
      key: 'seed/everywhere.txt',
      copies: [{ store: live, size: 19, etag: expect.any(String), mtime: new Date(1000).toISOString() }],
      content: { base64: base64('the same everywhere') },
      unavailable: down,
    });
  });

  it('reads a file present only on the live store as SINGLE with unavailable [both others]', async () => {
    expect(await readFile(onlyUp(live), `seed/only-${live}.txt`)).toMatchObject({
      status: 'SINGLE', copies: [{ store: live }], content: { base64: base64(`only on ${live}`) }, unavailable: down,
    });
  });

  it('answers NOT_FOUND for a file held only by a store that is down, saying which stores did not answer', async () => {
    expect(await readFile(onlyUp(live), `seed/only-${down[0]}.txt`)).toEqual({
      status: 'NOT_FOUND', key: `seed/only-${down[0]}.txt`, unavailable: down,
    });
  });

  it('lists the live store’s names, with only that store in each entry, and names the others unavailable', async () => {
    const listing = await listFiles(onlyUp(live), { prefix: 'seed/' });
    expect(listing).toMatchObject({ next: null, unavailable: down });
    expect(listing.files.map((f) => f.name)).toEqual(['seed/everywhere.txt', `seed/only-${live}.txt`]);
    for (const f of listing.files) {
      expect(Object.keys(f.stores)).toEqual([live]);
      expect(f.stores[live]).toMatchObject({ size: f.size });
    }
  });

  it('puts a file to all: written on the live store, failed on the others with a reason', async () => {
    const key = `put/${live}.txt`;
    const a = await putFile(onlyUp(live), { key, body: Buffer.from('written while two were away') });
    expect(a.results.map((r) => [r.store, r.ok])).toEqual(NAMES.map((n) => [n, n === live]));
    // Refused connections: the store did not answer.
    for (const r of a.results.filter((x) => !x.ok)) expect(r).toMatchObject({ code: 'NoAnswer', error: 'the store did not answer' });
    expect(await text(live, key)).toBe('written while two were away');
    for (const n of down) expect(await headObject({ name: n, bucket: n, s3: s3.client }, key)).toBeNull();
  });

  it('runs a multipart upload on the live store alone, the others listed in failed', async () => {
    const deps = onlyUp(live);
    const body = Buffer.from(`multipart while two were away (${live})`);
    const plan = await startUpload(deps, { key: `up/${live}.bin`, size: body.length });
    expect(plan.uploads.map((u) => u.store)).toEqual([live]);
    expect(plan.failed.map((f) => [f.store, f.ok])).toEqual(down.map((n) => [n, false]));

    const { urls } = await signParts(deps, { key: plan.key, uploads: plan.uploads, parts: [1] });
    const res = await fetch(urls[live]![0]!, { method: 'PUT', body });
    expect(res.status).toBe(200);
    const done = await completeUpload(deps, {
      key: plan.key, uploads: [{ ...plan.uploads[0]!, parts: [{ n: 1, etag: res.headers.get('etag')! }] }],
    });
    expect(done.results).toMatchObject([{ store: live, ok: true }]);
    expect(await text(live, plan.key)).toBe(body.toString());
  });

  it('deletes from the live store, tombstones the key and reports the others unavailable', async () => {
    const key = `del/${live}.txt`;
    await put(live, key, 'doomed');
    const a = await deleteFile(onlyUp(live), key, 'carol');
    expect(a.results).toEqual(NAMES.map((n) => (n === live ? { store: n, ok: true } : { store: n, ok: false, error: expect.stringMatching(/^unavailable/) })));
    expect(await headObject({ name: live, bucket: live, s3: s3.client }, key)).toBeNull();
    expect(await readTombstone(onlyUp(live), key)).toMatchObject({ key, who: 'carol' });
  });

  it('answers through the API with the unavailable stores named: 200 GET, 207 PUT', async () => {
    mockDeps = onlyUp(live);
    const call = async (method: string, rawPath: string, body?: string) => {
      const event = { rawPath, requestContext: { http: { method } }, headers: { authorization: AUTH }, body, isBase64Encoded: false };
      const res = (await handler(event as unknown as APIGatewayProxyEventV2)) as APIGatewayProxyStructuredResultV2;
      return { status: res.statusCode, body: JSON.parse(res.body as string) };
    };
    expect(await call('GET', '/files/seed/everywhere.txt')).toMatchObject({ status: 200, body: { status: 'SINGLE', unavailable: down } });
    expect(await call('PUT', `/files/api/${live}.txt`, 'via the API')).toMatchObject({
      status: 207, body: { results: NAMES.map((n) => ({ store: n, ok: n === live })) },
    });
    expect(await text(live, `api/${live}.txt`)).toBe('via the API');
  });
});

describe('three stores, all down', () => {
  const deps = () => makeDeps(NAMES.map((name) => ({ name, bucket: name, s3: nowhere })), { control: { bucket: 'control', s3: s3.client } });

  it('refuses reads and listings with AllStoresUnavailableError naming all three', async () => {
    for (const call of [() => readFile(deps(), 'seed/everywhere.txt'), () => listFiles(deps())]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AllStoresUnavailableError);
      expect((err as AllStoresUnavailableError).unavailable).toEqual([...NAMES]);
    }
  });

  it('reports every store failed for a put, writing nothing', async () => {
    const a = await putFile(deps(), { key: 'nowhere.txt', body: Buffer.from('x') });
    expect(a.results.map((r) => r.ok)).toEqual([false, false, false]);
    for (const n of NAMES) expect(await headObject({ name: n, bucket: n, s3: s3.client }, 'nowhere.txt')).toBeNull();
  });
});
