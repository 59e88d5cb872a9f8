import { AnswerError } from '../../client/answers';
import { UploadAborted, UploadInterrupted, uploadMultipart, type MultipartIo, type PartOutcome, type PartSource, type UploadOp } from '../../client/multipart';
import type { ApiResult } from '../../client/routes';

/**
 * The shared multipart client with bodies that are not bytes at all (labels), as the page's Blob
 * slices are not: it only carries what the source gives to the sender.
 */
const PART = 10;

function fakeApi(stores: string[], overrides: Partial<Record<UploadOp['op'], (op: UploadOp) => ApiResult>> = {}) {
  const ops: UploadOp[] = [];
  return {
    ops,
    of: <K extends UploadOp['op']>(k: K) => ops.filter((o): o is Extract<UploadOp, { op: K }> => o.op === k),
    api: {
      async send(op: UploadOp): Promise<ApiResult> {
        ops.push(op);
        const custom = overrides[op.op];
        if (custom) return custom(op);
        switch (op.op) {
          case 'startUpload':
            return { status: 200, body: { key: op.key, size: op.size, mtime: 'm', partSize: PART, parts: Math.max(1, Math.ceil(op.size / PART)), uploads: stores.map((store) => ({ store, uploadId: `u-${store}` })), failed: [] } };
          case 'signParts':
            return { status: 200, body: { urls: Object.fromEntries(op.uploads.map((u) => [u.store, op.parts.map((n) => `https://s3/${u.store}/${n}`)])) } };
          case 'completeUpload':
          case 'abortUpload':
            return { status: 200, body: { key: op.key, results: op.uploads.map((u) => ({ store: u.store, ok: true })) } };
        }
      },
    },
  };
}

/** A source of `size` bytes whose parts are labels; records each call. */
function labels(size: number): PartSource<string> & { calls: { n: number; position: number; length: number; slot: number }[] } {
  const calls: { n: number; position: number; length: number; slot: number }[] = [];
  return {
    size,
    calls,
    async readPart(n, position, length, slot) {
      calls.push({ n, position, length, slot });
      return `part ${n}`;
    },
  };
}

const io = (sendPart: (url: string, body: string) => PartOutcome | Promise<PartOutcome>, extra: Partial<MultipartIo<string>> = {}): MultipartIo<string> => ({
  sendPart: async (url, body) => sendPart(url, body),
  signal: new AbortController().signal,
  retryDelayMs: 0,
  ...extra,
});

const REQ = { key: 'big.bin', to: 'all', mtime: 1_700_000_000_000 };

describe('uploadMultipart', () => {
  it('sends what the source gives for each part to every store and completes with the ETags in order', async () => {
    const { api, of } = fakeApi(['server1', 'server2']);
    const sent: string[] = [];
    const source = labels(35);
    const r = await uploadMultipart(api, source, REQ, io((url, body) => {
      sent.push(`${url} ${body}`);
      return { ok: true, etag: `"${new URL(url).pathname}"` };
    }));
    expect(r.results).toEqual([{ store: 'server1', ok: true }, { store: 'server2', ok: true }]);
    expect(sent.sort()).toEqual(
      ['server1', 'server2'].flatMap((s) => [1, 2, 3, 4].map((n) => `https://s3/${s}/${n} part ${n}`)).sort(),
    );
    expect(source.calls.map(({ n, position, length }) => [n, position, length])).toEqual([[1, 0, 10], [2, 10, 10], [3, 20, 10], [4, 30, 5]]);
    expect(of('completeUpload')[0]!.uploads.map((u) => u.parts.map((p) => p.n))).toEqual([[1, 2, 3, 4], [1, 2, 3, 4]]);
    expect(of('startUpload')).toEqual([{ op: 'startUpload', key: 'big.bin', size: 35, mtime: REQ.mtime, to: 'all' }]);
  });

  it('asks for parts in increasing order, each slot again only once its part is sent', async () => {
    const { api } = fakeApi(['server1']);
    const source = labels(20 * PART);
    const busy = new Set<number>();
    const readSlot = source.readPart.bind(source);
    source.readPart = async (n, position, length, slot) => {
      // A sequential source (a stream) relies on both.
      expect(busy.has(slot)).toBe(false);
      busy.add(slot);
      return readSlot(n, position, length, slot);
    };
    await uploadMultipart(api, source, REQ, io(async (url) => {
      await new Promise((resolve) => setImmediate(resolve));
      busy.delete(source.calls.find((c) => c.n === Number(url.split('/').pop()))!.slot);
      return { ok: true, etag: '"e"' };
    }));
    expect(source.calls.map((c) => c.n)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(new Set(source.calls.map((c) => c.slot))).toEqual(new Set([0, 1, 2, 3]));
  });

  it('reports progress in bytes sent to every store, and stops it', async () => {
    const { api } = fakeApi(['server1']);
    const seen: number[] = [];
    const stop = jest.fn();
    await uploadMultipart(api, labels(25), REQ, io(() => ({ ok: true, etag: '"e"' }), {
      progress: (total) => {
        seen.push(total);
        return { update: (n) => seen.push(n), stop };
      },
    }));
    const [total, ...updates] = seen;
    expect(total).toBe(25);
    expect(updates).toHaveLength(3);
    expect(updates).toEqual([...updates].sort((x, y) => x - y));
    expect(updates.at(-1)).toBe(25);
    expect(stop).toHaveBeenCalledTimes(1);
  });

  it('drops a store whose part fails three times, completes the others and aborts the dropped one', async () => {
    const { api, of } = fakeApi(['server1', 'server2']);
    const r = await uploadMultipart(api, labels(30), REQ, io((url) => (url.includes('/server2/2') ? { ok: false, status: 500, why: 'HTTP 500' } : { ok: true, etag: '"e"' })));
    expect(r.results).toEqual([
      { store: 'server1', ok: true },
      { store: 'server2', ok: false, error: 'part 2 of 3 failed 3 times (HTTP 500); the upload there was given up' },
    ]);
    expect(of('completeUpload')[0]!.uploads.map((u) => u.store)).toEqual(['server1']);
    expect(of('abortUpload').map((a) => a.uploads.map((u) => u.store))).toEqual([['server2']]);
    expect(r.multipart.aborted).toEqual(['server2']);
  });

  it('throws UploadInterrupted and sends nothing when stopped before it starts', async () => {
    const { api, ops } = fakeApi(['server1']);
    const ctrl = new AbortController();
    ctrl.abort();
    await expect(uploadMultipart(api, labels(30), REQ, io(() => ({ ok: true, etag: '"e"' }), { signal: ctrl.signal }))).rejects.toBeInstanceOf(UploadInterrupted);
    expect(ops).toEqual([]);
  });

  it('throws the AnswerError of a refused start, with nothing to abort', async () => {
    const { api, of } = fakeApi(['server1'], { startUpload: () => ({ status: 400, body: { error: 'InvalidKey', message: 'key is empty' } }) });
    const err = await uploadMultipart(api, labels(30), REQ, io(() => ({ ok: true, etag: '"e"' }))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnswerError);
    expect(err).toMatchObject({ kind: 'refused', status: 400, code: 'InvalidKey', message: 'key is empty', unavailableMeans: 'nothing was stored' });
    expect(of('abortUpload')).toEqual([]);
  });

  it('aborts everywhere and throws UploadAborted (stage parts) when the source cannot be read, or changed', async () => {
    for (const source of [
      { ...labels(30), readPart: async () => Promise.reject(new Error('disk gone')) },
      { ...labels(30), verify: async () => Promise.reject(new Error('changed')) },
    ]) {
      const { api, of } = fakeApi(['server1', 'server2']);
      const err = (await uploadMultipart(api, source, REQ, io(() => ({ ok: true, etag: '"e"' }))).catch((e: unknown) => e)) as UploadAborted;
      expect(err).toBeInstanceOf(UploadAborted);
      expect(err.stage).toBe('parts');
      expect(err.report).toMatchObject({ aborted: ['server1', 'server2'], abortFailed: [] });
      expect(of('completeUpload')).toEqual([]);
    }
  });

  it('says the file may be stored (stage complete) when the completion fails, and names stores it could not abort', async () => {
    const { api } = fakeApi(['server1'], {
      completeUpload: () => ({ status: 500, body: { error: 'Internal' } }),
      abortUpload: () => ({ status: 503, body: { error: 'Unavailable' } }),
    });
    const err = (await uploadMultipart(api, labels(30), REQ, io(() => ({ ok: true, etag: '"e"' }))).catch((e: unknown) => e)) as UploadAborted;
    expect(err).toBeInstanceOf(UploadAborted);
    expect(err.stage).toBe('complete');
    expect(err.cause).toMatchObject({ kind: 'refused', status: 500, code: 'Internal' });
    expect(err.report.abortFailed).toEqual(['server1']);
  });

  it('throws UploadAborted caused by UploadInterrupted when stopped during the parts, cancelling the part in flight', async () => {
    const { api, of } = fakeApi(['server1']);
    const ctrl = new AbortController();
    let cancelled = false;
    const err = (await uploadMultipart(api, labels(30), REQ, {
      signal: ctrl.signal,
      retryDelayMs: 0,
      sendPart: (_url, _body, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            cancelled = true;
            reject(new Error('cancelled'));
          });
          ctrl.abort();
        }),
    }).catch((e: unknown) => e)) as UploadAborted;
    expect(err).toBeInstanceOf(UploadAborted);
    expect(err.cause).toBeInstanceOf(UploadInterrupted);
    expect(cancelled).toBe(true);
    expect(of('abortUpload')).toHaveLength(1);
  });
});
