import { buildSync } from 'esbuild';
import { join } from 'node:path';
import {
  AnswerError,
  appliedOf,
  drainAnswerOf,
  heldCount,
  listingOf,
  lockAnswerOf,
  readAnswerOf,
  refused,
  signedUrlsOf,
  syncReportOf,
  writeAnswerOf,
} from '../../client/answers';

const ROOT = join(__dirname, '../..');
const thrown = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err as AnswerError;
  }
  throw new Error('did not throw');
};

describe('AnswerError', () => {
  it('keeps the API’s code, words and status for a refusal, and what a 503 means for the request', () => {
    const err = refused({ status: 503, body: { error: 'Unavailable', message: 'no store answered', unavailable: ['server2'] } }, 'nothing was stored');
    expect(err).toMatchObject({ kind: 'refused', status: 503, code: 'Unavailable', message: 'no store answered', unavailableMeans: 'nothing was stored' });
    expect(err.body).toMatchObject({ unavailable: ['server2'] });
  });

  it('is Http<status> without an error code, and BadResponse when malformed', () => {
    expect(refused({ status: 502, body: '<html>bad gateway</html>' })).toMatchObject({ code: 'Http502', message: 'the server answered 502' });
    expect(thrown(() => listingOf({ status: 200, body: { files: 'x', next: null } }))).toMatchObject({ kind: 'malformed', code: 'BadResponse' });
  });
});

describe('the guards', () => {
  it('take a 404 NOT_FOUND as a read answer, and a 404 of something else as a refusal', () => {
    expect(readAnswerOf({ status: 404, body: { status: 'NOT_FOUND', key: 'a' } })).toEqual({ status: 'NOT_FOUND', key: 'a', unavailable: [] });
    expect(thrown(() => readAnswerOf({ status: 404, body: { error: 'NoRoute' } }))).toMatchObject({ kind: 'refused', code: 'NoRoute' });
  });

  it('take a 207 and a 503 with results as write answers, not a bare 503', () => {
    const results = [{ store: 'server1', ok: false, error: 'down' }];
    expect(writeAnswerOf({ status: 503, body: { key: 'a', results } }, 'n').results).toEqual(results);
    expect(thrown(() => writeAnswerOf({ status: 503, body: { error: 'Unavailable' } }, 'nothing was deleted'))).toMatchObject({ kind: 'refused', unavailableMeans: 'nothing was deleted' });
  });

  it('want one part URL per part asked for, for every store', () => {
    const uploads = [{ store: 'server1', uploadId: 'u1' }, { store: 'server2', uploadId: 'u2' }];
    const urls = { server1: ['a', 'b'], server2: ['c', 'd'] };
    expect(signedUrlsOf({ status: 200, body: { urls } }, uploads, [1, 2])).toEqual(urls);
    expect(thrown(() => signedUrlsOf({ status: 200, body: { urls: { server1: ['a', 'b'], server2: ['c'] } } }, uploads, [1, 2]))).toMatchObject({
      kind: 'malformed',
      message: 'POST /uploads/sign answered without 2 URLs for server2',
    });
  });

  it('read a lock, a drain and a batch applied', () => {
    const lock = { key: 'a', store: 'server1', holder: 'ann', since: 's', expires: 1, next: 3, applied: 1 };
    expect(lockAnswerOf({ status: 201, body: lock })).toEqual(lock);
    expect(heldCount(lock)).toBe(1);
    expect(thrown(() => lockAnswerOf({ status: 409, body: { error: 'LockHeld', holder: 'bob', since: 's' } }))).toMatchObject({ kind: 'refused', code: 'LockHeld' });
    expect(drainAnswerOf({ status: 202, body: { applied: 1, total: 4, done: false } }, 'a', 'server1')).toEqual({ key: 'a', store: 'server1', applied: 1, total: 4, done: false });
    expect(thrown(() => appliedOf({ status: 200, body: { done: 1, failed: [] } }, []))).toMatchObject({ message: 'POST /reconcile/apply accounted for 1 of 0 steps' });
  });

  it('take a 409 of a sync guard as a refusal the client words itself', () => {
    expect(thrown(() => syncReportOf({ status: 409, body: { error: 'Conflict', message: 'server2 is empty' } }))).toMatchObject({ kind: 'refused', status: 409, message: 'server2 is empty' });
  });
});

describe('client/', () => {
  it('bundles for a browser: no Node module, no Node global, no server code', () => {
    const out = buildSync({
      absWorkingDir: ROOT,
      entryPoints: ['client/answers.ts', 'client/multipart.ts', 'client/routes.ts', 'client/pause.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      outdir: 'out',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(out.metafile.inputs);
    expect(inputs.filter((f) => !f.startsWith('client/')).sort()).toEqual(['lib/errors.ts', 'lib/keys.ts']);
    for (const file of out.outputFiles) expect(file.text).not.toMatch(/\b(require\(|Buffer\.|process\.)/);
  });
});
