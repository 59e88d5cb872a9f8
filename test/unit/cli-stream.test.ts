import { uploadMultipart, STREAM_SIZE_CEILING, type UploadOp } from '../../client/multipart';
import type { ApiResult } from '../../client/routes';
import { readHead, streamParts } from '../../cli/stream';
import { formatDuration, Meter } from '../../cli/meter';

/** A stream yielding `chunks` one at a time, as stdin does. */
async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield Buffer.from(p);
}

describe('readHead', () => {
  it('says the stream ended when it fits the limit, and hands on the rest when it does not', async () => {
    expect(await readHead(chunks('ab', 'c'), 4)).toMatchObject({ head: Buffer.from('abc'), ended: true });
    const long = await readHead(chunks('ab', 'cd', 'ef', 'g'), 4);
    expect(long.head.toString()).toBe('abcdef');
    expect(long.ended).toBe(false);
    expect((await long.rest.next()).value.toString()).toBe('g');
  });
});

describe('streamParts', () => {
  it('cuts the head and the rest into parts in order, the last one short, then says the end', async () => {
    const { head, rest } = await readHead(chunks('abc', 'defg', 'hij'), 2);
    const seen: number[] = [];
    const parts = streamParts(head, rest, (b) => seen.push(b));
    const got = await Promise.all([parts.readPart(1, 0, 4, 0), parts.readPart(2, 4, 4, 1), parts.readPart(3, 8, 4, 2), parts.readPart(4, 12, 4, 3)]);
    expect(got.map((b) => (b === null ? null : Buffer.from(b).toString()))).toEqual(['abcd', 'efgh', 'ij', null]);
    expect(seen).toEqual([4, 8, 10]);
    expect(parts.bytes).toBe(10);
  });

  it('gives an empty stream as one empty part', async () => {
    const { head, rest } = await readHead(chunks(), 2);
    const parts = streamParts(head, rest);
    expect(Buffer.from((await parts.readPart(1, 0, 4, 0))!).length).toBe(0);
    expect(await parts.readPart(2, 4, 4, 0)).toBeNull();
  });
});

describe('uploadMultipart of a source of unknown size', () => {
  // What the server plans for the ceiling: 10,000 parts of 8 MiB.
  const PART = STREAM_SIZE_CEILING / 10_000;
  function api() {
    const ops: UploadOp[] = [];
    return {
      ops,
      async send(op: UploadOp): Promise<ApiResult> {
        ops.push(op);
        if (op.op === 'startUpload') {
          return { status: 200, body: { key: op.key, size: op.size, mtime: 'm', partSize: PART, parts: Math.ceil(op.size / PART), uploads: [{ store: 's1', uploadId: 'u' }], failed: [] } };
        }
        if (op.op === 'signParts') return { status: 200, body: { urls: { s1: op.parts.map((n) => `u/${n}`) } } };
        return { status: 200, body: { key: op.key, results: [{ store: 's1', ok: true }] } };
      },
    };
  }

  it('plans for the ceiling, sends the parts the stream has, and completes with exactly those', async () => {
    const a = api();
    const data = Buffer.alloc(2 * PART + 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    async function* stdin() {
      for (let i = 0; i < data.length; i += 65_536) yield data.subarray(i, i + 65_536);
    }
    const { head, rest } = await readHead(stdin(), 100);
    const sent = new Map<string, Buffer>();
    const r = await uploadMultipart(a, streamParts(head, rest), { key: 'k', to: 'all', mtime: 1 }, {
      signal: new AbortController().signal,
      sendPart: async (url, body) => {
        sent.set(url, Buffer.from(body)); // copied: the source reuses its buffers
        return { ok: true, etag: url };
      },
    });
    expect(a.ops[0]).toMatchObject({ op: 'startUpload', size: STREAM_SIZE_CEILING });
    expect([...sent.keys()].sort()).toEqual(['u/1', 'u/2', 'u/3']);
    expect(Buffer.concat([sent.get('u/1')!, sent.get('u/2')!, sent.get('u/3')!]).equals(data)).toBe(true);
    expect(r).toMatchObject({ size: data.length, multipart: { parts: 3 } });
    const complete = a.ops.find((o) => o.op === 'completeUpload') as Extract<UploadOp, { op: 'completeUpload' }>;
    expect(complete.uploads[0]!.parts.map((p) => p.n)).toEqual([1, 2, 3]);
  });
});

describe('Meter', () => {
  it('shows files, bytes of the total, speed over the last seconds and the ETA', () => {
    let now = 0;
    const m = new Meter(undefined, { files: 10, bytes: 10 * 1024 * 1024 }, () => now);
    now = 2000;
    m.addBytes(4 * 1024 * 1024);
    m.fileDone(true);
    m.fileDone(false);
    expect(m.line()).toBe('2/10 files (1 failed)  4.0 MiB of 10.0 MiB  2.0 MiB/s  ETA 0:03');
  });

  it('shows only bytes and speed when the total is unknown (stdin)', () => {
    let now = 0;
    const m = new Meter(undefined, {}, () => now);
    now = 1000;
    m.addBytes(512);
    expect(m.line()).toBe('512 B  512 B/s');
  });

  it.each([
    [3.2, '0:04'],
    [75, '1:15'],
    [3723, '1:02:03'],
  ])('formats %d s as %s', (s, text) => expect(formatDuration(s)).toBe(text));
});
