import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { Deps } from '../../lib/deps';
import { AllStoresUnavailableError } from '../../lib/errors';
import { ChangedWhileReadingError } from '../../lib/compare';
import { readFile } from '../../lib/read';
import type { ReadAnswer } from '../../lib/types';
import { makeDeps } from '../helpers/deps';
import { makeStores, networkError, useFakeS3 } from '../helpers/mock-s3';

/*
 * The read path's edges: how often it looks again at a key that keeps changing, the inline
 * limit's boundary (a copy of exactly that size is inline, read once), which body in hand
 * stands for a version, and which version is newest when mtimes tie.
 */

const { s3mock, fake } = useFakeS3();
const stores = makeStores(3);
const depsOf = (n: number, over: Partial<Deps> = {}) => makeDeps(stores.slice(0, n), { compareChunkBytes: 1024, ...over });

const bytes = (n: number, seed = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251));
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

const gets = () => s3mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input);
/** GETs pinned to a copy's ETag: the reads of a compare or of a body for the answer (the first store's probe is not pinned). */
const pinnedGets = () => gets().filter((i) => i.IfMatch !== undefined);
const headsOn = (bucket: string) => s3mock.commandCalls(HeadObjectCommand).filter((c) => c.args[0].input.Bucket === bucket).length;

type Single = Extract<ReadAnswer, { status: 'SINGLE' }>;
type Different = Extract<ReadAnswer, { status: 'DIFFERENT' }>;

describe('readFile: a key that keeps changing', () => {
  /** server2's copy is replaced each time its bytes are read, `times` times in all. */
  function replaceOnEveryRead(times: number): () => number {
    let n = 0;
    fake.onRequest((command, input) => {
      if (command === 'GetObject' && input.Bucket === 'bucket-2' && input.IfMatch !== undefined && n < times) {
        n++;
        fake.put('bucket-2', 'f', bytes(2048), { etag: `v${n}-2` });
      }
    });
    return () => n;
  }

  it('looks three times in all, then gives up with ChangedWhileReadingError (409)', async () => {
    fake.put('bucket-1', 'f', bytes(2048), { etag: 'abc-2' });
    fake.put('bucket-2', 'f', bytes(2048), { etag: 'old-2' });
    const replaced = replaceOnEveryRead(5);
    const err = await readFile(depsOf(2), 'f', { meta: true }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ChangedWhileReadingError);
    expect(replaced()).toBe(3);
    expect(headsOn('bucket-2')).toBe(3);
  });

  it('answers from the third look when the copy stops changing after two', async () => {
    fake.put('bucket-1', 'f', bytes(2048), { etag: 'abc-2' });
    fake.put('bucket-2', 'f', bytes(2048), { etag: 'old-2' });
    replaceOnEveryRead(2);
    const answer = (await readFile(depsOf(2), 'f', { meta: true })) as Single;

    expect(answer.status).toBe('SINGLE');
    expect(answer.copies.map((c) => c.etag)).toEqual(['abc-2', 'v2-2']);
    expect(headsOn('bucket-2')).toBe(3);
  });

  it('does not look again when no store answers: that is not a copy changing', async () => {
    fake.put('bucket-1', 'f', 'hello');
    fake.fail('bucket-1', networkError);
    fake.fail('bucket-2', networkError);
    await expect(readFile(depsOf(2), 'f')).rejects.toBeInstanceOf(AllStoresUnavailableError);

    expect([gets().length, headsOn('bucket-2')]).toEqual([1, 1]);
  });

  it('looks again when the body it reads for the answer was replaced, instead of answering from another holder', async () => {
    // server2 and server3 hold one version (same MD5), server1 another; the body read for the
    // answer is server2's, replaced meanwhile by server1's bytes: the fresh look groups it there.
    fake.put('bucket-1', 'f', 'short');
    fake.put('bucket-2', 'f', 'a longer one');
    fake.put('bucket-3', 'f', 'a longer one');
    let replaced = false;
    fake.onRequest((command, input) => {
      if (!replaced && command === 'GetObject' && input.Bucket === 'bucket-2' && input.IfMatch !== undefined) {
        replaced = true;
        fake.put('bucket-2', 'f', 'short');
      }
    });
    const answer = (await readFile(depsOf(3), 'f')) as Different;

    expect(answer.status).toBe('DIFFERENT');
    expect(answer.versions.map((v) => [v.stores, v.content])).toEqual([
      [['server1', 'server2'], { base64: b64('short') }],
      [['server3'], { base64: b64('a longer one') }],
    ]);
  });
});

describe('readFile: the inline limit', () => {
  it('inlines a copy of exactly the limit from the first store\'s GET, reading no body again', async () => {
    const content = bytes(4096);
    fake.put('bucket-1', 'f', content);
    fake.put('bucket-2', 'f', content);
    const deps = depsOf(2, { inlineLimit: 4096 });
    const answer = (await readFile(deps, 'f')) as Single;

    expect(answer.content).toEqual({ base64: content.toString('base64') });
    expect(pinnedGets()).toEqual([]);
    expect(deps.meter!.bodyBytes).toBe(4096);
  });

  it('answers by URL a copy one byte over the limit, reading no body', async () => {
    const content = bytes(4097);
    fake.put('bucket-1', 'f', content);
    fake.put('bucket-2', 'f', content);
    const deps = depsOf(2, { inlineLimit: 4096 });
    const answer = (await readFile(deps, 'f')) as Single;

    expect(answer.content).toEqual({ url: expect.stringContaining('bucket-1'), expires: expect.any(String) });
    expect(deps.meter!.bodyBytes).toBe(0);
  });

  it.each([
    ['below the limit', 4095, 8192],
    ['of exactly the limit', 4096, 4096],
  ])('reads copies %s whole to compare them, once each, and answers with those bytes (first store without the key)', async (_, size, inlineLimit) => {
    const content = bytes(size);
    fake.put('bucket-2', 'f', content, { etag: 'abc-2' });
    fake.put('bucket-3', 'f', content, { etag: 'def-3' });
    const deps = depsOf(3, { inlineLimit });
    const answer = (await readFile(deps, 'f')) as Single;

    expect(answer.status).toBe('SINGLE');
    expect(answer.content).toEqual({ base64: content.toString('base64') });
    expect(pinnedGets().map((i) => i.Bucket).sort()).toEqual(['bucket-2', 'bucket-3']);
    expect(deps.meter!.bodyBytes).toBe(2 * size);
  });

  it('takes the body already in hand from any holder of a version, not only its first', async () => {
    // server1 differs from server2 by CRC32 and cannot be told from server3 but by its bytes, so
    // server3 is read whole; server2 and server3 agree by SHA256 and form one version, whose
    // content is server3's bytes in hand: server2 is never read.
    const full = { checksumType: 'FULL_OBJECT' as const };
    fake.put('bucket-1', 'f', bytes(1000), { etag: 'a-2', checksums: { CRC32: 'AAAAAA==' }, ...full });
    fake.put('bucket-2', 'f', bytes(1000, 7), { etag: 'b-2', checksums: { CRC32: 'BBBBBB==', SHA256: 'c2hhMjU2' }, ...full });
    fake.put('bucket-3', 'f', bytes(1000, 7), { etag: 'c-2', checksums: { SHA256: 'c2hhMjU2' }, ...full });
    const deps = depsOf(3, { inlineLimit: 4096 });
    const answer = (await readFile(deps, 'f')) as Different;

    expect(answer.versions.map((v) => [v.stores, v.content])).toEqual([
      [['server1'], { base64: bytes(1000).toString('base64') }],
      [['server2', 'server3'], { base64: bytes(1000, 7).toString('base64') }],
    ]);
    expect(pinnedGets().map((i) => i.Bucket)).toEqual(['bucket-3']);
    expect(deps.meter!.bodyBytes).toBe(2000);
  });
});

describe('readFile: the newest version', () => {
  it('calls the version of the earlier store newest when mtimes tie', async () => {
    fake.put('bucket-1', 'f', 'one', { mtime: 5000 });
    fake.put('bucket-2', 'f', 'two', { mtime: 5000 });
    fake.put('bucket-3', 'f', 'six', { mtime: 5000 });
    const answer = (await readFile(depsOf(3), 'f')) as Different;

    expect(answer.versions.map((v) => [v.stores, v.newest])).toEqual([[['server1'], true], [['server2'], false], [['server3'], false]]);
  });

  it('calls a later version newest by one millisecond', async () => {
    fake.put('bucket-1', 'f', 'one', { mtime: 5000 });
    fake.put('bucket-2', 'f', 'two', { mtime: 5001 });
    const answer = (await readFile(depsOf(2), 'f')) as Different;

    expect(answer.versions.map((v) => v.newest)).toEqual([false, true]);
  });
});
