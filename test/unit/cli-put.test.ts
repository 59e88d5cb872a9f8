import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiOp, PartOutcome, PartSender, Transport } from '../../cli/client';
import { INLINE_LIMIT, UPLOAD_DEFAULTS, putFile, uploadPlanOf, type PutIo } from '../../cli/put';
import { noProgress } from '../../cli/progress';

const MiB = 1024 * 1024;
const SIZE = INLINE_LIMIT + 10; // just over the inline limit: 5 parts of 1 MiB
const PART = MiB;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dfs-put-unit-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function bigFile(): string {
  const path = join(dir, 'big.bin');
  writeFileSync(path, Buffer.alloc(SIZE, 7));
  return path;
}

/** A fake API that plans 1 MiB parts on the given stores; every op is recorded. */
function fakeApi(stores = ['server1', 'server2'], overrides: Partial<Record<ApiOp['op'], (op: ApiOp) => { status: number; body: unknown }>> = {}) {
  const ops: ApiOp[] = [];
  let signs = 0;
  const api: Transport = {
    async send(op) {
      ops.push(op);
      const custom = overrides[op.op];
      if (custom) return custom(op);
      switch (op.op) {
        case 'startUpload':
          return { status: 200, body: { key: op.key, size: op.size, mtime: 'm', partSize: PART, parts: Math.ceil(op.size / PART), uploads: stores.map((store) => ({ store, uploadId: `u-${store}` })), failed: [] } };
        case 'signParts':
          signs += 1;
          return { status: 200, body: { urls: Object.fromEntries(op.uploads.map((u) => [u.store, op.parts.map((n) => `http://s3/${u.store}/${n}?sig=${signs}`)])) } };
        case 'completeUpload':
          return { status: 200, body: { key: op.key, results: op.uploads.map((u) => ({ store: u.store, ok: true })) } };
        case 'abortUpload':
          return { status: 200, body: { key: op.key, results: op.uploads.map((u) => ({ store: u.store, ok: true })) } };
        default:
          return { status: 200, body: { key: 'k', results: stores.map((store) => ({ store, ok: true })) } };
      }
    },
  };
  return { api, ops, of: <K extends ApiOp['op']>(k: K) => ops.filter((o): o is Extract<ApiOp, { op: K }> => o.op === k) };
}

/** A stand-in for part PUTs; `answer` decides per URL, default success with an ETag. */
function fakeSender(answer: (url: URL, calls: number) => PartOutcome | Promise<PartOutcome> = () => ({ ok: true, etag: '"e"' })) {
  const calls: string[] = [];
  const f: PartSender = async (url) => {
    calls.push(url);
    return answer(new URL(url), calls.length);
  };
  return { f, calls };
}

const io = (extra: Partial<PutIo> = {}): PutIo => ({ progress: noProgress, signal: new AbortController().signal, retryDelayMs: 0, ...extra });

describe('putFile, multipart', () => {
  it('retries a failed part and keeps the store when a later try works', async () => {
    const { api, of } = fakeApi();
    let failures = 0;
    const { f } = fakeSender((url): PartOutcome => {
      if (url.pathname === '/server2/3' && failures < 2) {
        failures += 1;
        return { ok: false, status: 503, why: 'HTTP 503 SlowDown' };
      }
      return { ok: true, etag: `"${url.pathname}"` };
    });
    const r = await putFile(() => api, { file: bigFile(), to: 'all' }, io({ sendPart: f }));
    expect(r.exitCode).toBe(0);
    expect(r.results.map((x) => x.ok)).toEqual([true, true]);
    const [complete] = of('completeUpload');
    expect(complete!.uploads[1]!.parts).toEqual([1, 2, 3, 4, 5].map((n) => ({ n, etag: `"/server2/${n}"` })));
    expect(of('abortUpload')).toEqual([]);
  });

  it('re-signs a part whose URL is refused with 403 (an expired link) before trying again', async () => {
    const { api, of } = fakeApi(['server1']);
    const { f, calls } = fakeSender((url) =>
      url.pathname === '/server1/2' && url.searchParams.get('sig') === '1' ? { ok: false, status: 403, why: 'HTTP 403 AccessDenied' } : { ok: true, etag: '"e"' },
    );
    const r = await putFile(() => api, { file: bigFile(), to: 'server1' }, io({ sendPart: f }));
    expect(r.exitCode).toBe(0);
    expect(of('signParts').map((s) => s.parts)).toEqual([[1, 2, 3, 4, 5], [2]]);
    expect(calls.filter((c) => c.includes('/server1/2'))).toEqual(['http://s3/server1/2?sig=1', 'http://s3/server1/2?sig=2']);
  });

  it('keeps at most UPLOAD_DEFAULTS.concurrency parts in flight', async () => {
    const { api } = fakeApi(['server1']);
    const inFlight = new Set<string>();
    let most = 0;
    // The first part is held until a second is in flight (or 2 s pass): reading parts from disk
    // takes real time, so without a hold a fast fake finishes each part before the next starts.
    let second!: () => void;
    const secondArrived = new Promise<void>((resolve) => (second = resolve));
    const { f } = fakeSender(async (url) => {
      inFlight.add(url.pathname);
      most = Math.max(most, inFlight.size);
      if (inFlight.size >= 2) second();
      await Promise.race([secondArrived, new Promise((resolve) => setTimeout(resolve, 2000))]);
      inFlight.delete(url.pathname);
      return { ok: true, etag: '"e"' };
    });
    await putFile(() => api, { file: bigFile(), to: 'server1' }, io({ sendPart: f }));
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(UPLOAD_DEFAULTS.concurrency);
  });

  it('aborts the upload and throws when signing fails', async () => {
    const { api, of } = fakeApi(['server1', 'server2'], { signParts: () => ({ status: 500, body: { error: 'Internal' } }) });
    await expect(putFile(() => api, { file: bigFile(), to: 'all' }, io({ sendPart: fakeSender().f }))).rejects.toMatchObject({
      exitCode: 1,
      message: 'the server failed (500 Internal); the upload was aborted, nothing was stored',
      details: { aborted: ['server1', 'server2'], abortFailed: [] },
    });
    expect(of('abortUpload')).toHaveLength(1);
    expect(of('completeUpload')).toEqual([]);
  });

  it('aborts when the file changes during the upload', async () => {
    const { api, of } = fakeApi(['server1']);
    const path = bigFile();
    const { f } = fakeSender((_url, calls) => {
      if (calls === 1) appendFileSync(path, 'more');
      return { ok: true, etag: '"e"' };
    });
    await expect(putFile(() => api, { file: path, to: 'server1' }, io({ sendPart: f }))).rejects.toMatchObject({
      code: 'FileChanged',
      message: 'the file changed while it was being uploaded; the upload was aborted, nothing was stored',
    });
    expect(of('abortUpload')).toHaveLength(1);
    expect(of('completeUpload')).toEqual([]);
  });

  it('reports stores that could not start, and exits 5 when none did', async () => {
    const { api, of } = fakeApi([], {
      startUpload: () => ({ status: 200, body: { key: 'k', size: SIZE, mtime: 'm', partSize: PART, parts: 5, uploads: [], failed: [{ store: 'server1', ok: false, error: 'NoSuchBucket' }] } }),
    });
    const r = await putFile(() => api, { file: bigFile(), to: 'all' }, io({ sendPart: fakeSender().f }));
    expect(r.exitCode).toBe(5);
    expect(r.results).toEqual([{ store: 'server1', ok: false, error: 'could not start the upload: NoSuchBucket' }]);
    expect(of('signParts')).toEqual([]);
  });

  it('sends nothing once interrupted', async () => {
    const { api, ops } = fakeApi();
    const ctrl = new AbortController();
    ctrl.abort();
    await expect(putFile(() => api, { file: bigFile(), to: 'all' }, io({ signal: ctrl.signal }))).rejects.toMatchObject({ exitCode: 130 });
    expect(ops).toEqual([]);
  });
});

describe('uploadPlanOf', () => {
  const plan = { key: 'k', size: 10, mtime: 'm', partSize: 4, parts: 3, uploads: [{ store: 's', uploadId: 'u' }], failed: [] };

  it('accepts a plan whose parts cover the file', () => {
    expect(uploadPlanOf({ status: 200, body: plan }, 10)).toEqual(plan);
    expect(uploadPlanOf({ status: 200, body: { ...plan, failed: undefined } }, 10).failed).toEqual([]);
  });

  it.each([
    ['too few parts', { ...plan, parts: 2 }],
    ['a zero part size', { ...plan, partSize: 0 }],
    ['no uploads list', { ...plan, uploads: undefined }],
    ['an upload without id', { ...plan, uploads: [{ store: 's' }] }],
  ])('refuses %s', (_what, body) => {
    expect(() => uploadPlanOf({ status: 200, body }, 10)).toThrow(expect.objectContaining({ code: 'BadResponse' }));
  });

  it('maps a refusal to its error', () => {
    expect(() => uploadPlanOf({ status: 400, body: { error: 'UnknownStore', message: 'unknown store "x"' } }, 10)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});
