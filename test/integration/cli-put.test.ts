/**
 * Runs the real `node bin/dfs.js put …` against a fake API (node:http on 127.0.0.1) that also
 * plays the stores behind presigned part URLs, so a multipart upload is checked byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StoreOutcome } from '../../lib/types';
import { noRoute, sendJson, startDfs, useCliSandbox, type SeenRequest } from '../helpers/cli';
import { useTempDirs } from '../helpers/temp';

const STORES = ['server1', 'server2'];
const MTIME = new Date('2024-05-01T10:00:00.000Z');
// The fake API's part size: small, so a 5 MiB file makes 161 parts and two sign batches.
const PART = 32 * 1024;

/** Parts received per `store/uploadId`, by part number. */
let parts = new Map<string, Map<number, Buffer>>();
/** Objects completed per `store/key`. */
let objects = new Map<string, Buffer>();
let onHeldPart: (() => void) | undefined;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const json = (body: Buffer) => JSON.parse(body.toString('utf8'));
const apiCalls = () => seen().filter((s) => !s.url.startsWith('/s3/'));
const posts = (path: string) => seen().filter((s) => s.method === 'POST' && s.url === path).map((s) => json(s.body));

const outcome = (store: string, ok: boolean, error?: string): StoreOutcome => (ok ? { store, ok, etag: 'e' } : { store, ok, error: error ?? 'failed' });

function route(req: SeenRequest, res: ServerResponse): void {
  const url = new URL(req.url, 'http://x');
  // Presigned part URLs: /s3/<store>/<uploadId>/<n>?X-Amz-Signature=…
  if (url.pathname.startsWith('/s3/')) {
    const [store = '', uploadId = '', n = ''] = url.pathname.slice(4).split('/');
    if (uploadId.startsWith('hang')) {
      onHeldPart?.();
      return; // never answered: the test interrupts the CLI meanwhile
    }
    if (uploadId.startsWith('flaky') && store === 'server2') {
      res.writeHead(500, { 'content-type': 'application/xml' });
      return void res.end('<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>');
    }
    const id = `${store}/${uploadId}`;
    if (!parts.has(id)) parts.set(id, new Map());
    parts.get(id)!.set(Number(n), req.body);
    res.writeHead(200, { etag: `"${md5(req.body)}"` });
    return void res.end();
  }
  if (req.method === 'PUT' && url.pathname.startsWith('/files/')) {
    const key = decodeURIComponent(url.pathname.slice('/files/'.length));
    const to = url.searchParams.get('to') ?? 'all';
    const targets = to === 'all' ? STORES : [to];
    if (key === 'too-big-for-inline.txt') return sendJson(res, 413, { error: 'PayloadTooLarge', message: 'over the inline limit' });
    if (key === 'half.txt') return sendJson(res, 207, { key, size: req.body.length, mtime: 'm', results: [outcome('server1', true), outcome('server2', false, 'NoSuchBucket: The specified bucket does not exist')] });
    if (key === 'none.txt') return sendJson(res, 503, { key, results: STORES.map((s) => outcome(s, false, 'TimeoutError: socket hang up')) });
    if (key === 'refused.txt') return sendJson(res, 400, { error: 'UnknownStore', message: 'unknown store "server9"; stores are: all, server1, server2' });
    if (key === 'older.txt' && url.searchParams.get('touch') !== '1') {
      return sendJson(res, 409, {
        error: 'Overruled',
        message: 'server2 holds a newer version (mtime 2026-06-01T00:00:00.000Z) that replication would put back over this one; write to all stores, or touch the file to make it the newest',
        newer: { store: 'server2', mtime: '2026-06-01T00:00:00.000Z' },
      });
    }
    for (const s of targets) objects.set(`${s}/${key}`, req.body);
    return sendJson(res, 200, { key, size: req.body.length, mtime: new Date(Number(req.headers['x-dfs-mtime'])).toISOString(), results: targets.map((s) => outcome(s, true)) });
  }
  if (req.method === 'POST' && url.pathname === '/uploads') {
    const b = json(req.body) as { key: string; size: number; to: string };
    const targets = b.to === 'all' ? STORES : [b.to];
    const kind = b.key.startsWith('hang') ? 'hang' : b.key.startsWith('flaky') ? 'flaky' : 'up';
    return sendJson(res, 200, {
      key: b.key,
      size: b.size,
      mtime: 'm',
      partSize: PART,
      parts: Math.max(1, Math.ceil(b.size / PART)),
      uploads: targets.map((store) => ({ store, uploadId: `${kind}-${store}` })),
      failed: [],
    });
  }
  if (req.method === 'POST' && url.pathname === '/uploads/sign') {
    const b = json(req.body) as { uploads: { store: string; uploadId: string }[]; parts: number[] };
    const urls = Object.fromEntries(b.uploads.map((u) => [u.store, b.parts.map((n) => `${sandbox.api.url}/s3/${u.store}/${u.uploadId}/${n}?X-Amz-Signature=abc`)]));
    return sendJson(res, 200, { urls, expires: '2030-01-01T00:00:00.000Z' });
  }
  if (req.method === 'POST' && url.pathname === '/uploads/complete') {
    const b = json(req.body) as { key: string; uploads: { store: string; uploadId: string; parts: { n: number; etag: string }[] }[] };
    const results = b.uploads.map((u) => {
      const got = parts.get(`${u.store}/${u.uploadId}`) ?? new Map<number, Buffer>();
      const pieces = u.parts.map((p) => got.get(p.n));
      if (pieces.some((p, i) => !p || `"${md5(p)}"` !== u.parts[i]!.etag)) return outcome(u.store, false, 'InvalidPart');
      objects.set(`${u.store}/${b.key}`, Buffer.concat(pieces as Buffer[]));
      return outcome(u.store, true);
    });
    return sendJson(res, 200, { key: b.key, results });
  }
  if (req.method === 'POST' && url.pathname === '/uploads/abort') {
    const b = json(req.body) as { key: string; uploads: { store: string }[] };
    return sendJson(res, 200, { key: b.key, results: b.uploads.map((u) => outcome(u.store, true)) });
  }
  noRoute(req, res);
}

const sandbox = useCliSandbox(route);
const seen = () => sandbox.api.requests;
const tempDir = useTempDirs('dfs-put-');
let dir: string;

beforeEach(() => {
  parts = new Map();
  objects = new Map();
  dir = tempDir();
});

const start = (args: string[]) => startDfs(args, { cwd: dir, env: sandbox.env({ TZ: 'UTC' }) });
const dfs = (...args: string[]) => start(args).done;

/** A file in the test folder with a known mtime. */
function file(name: string, content: Buffer | string): Buffer {
  const body = Buffer.from(content);
  const path = join(dir, name);
  writeFileSync(path, body);
  utimesSync(path, MTIME, MTIME);
  return body;
}

/** Deterministic bytes, so a lost, doubled or swapped part shows. */
function bytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 1) b[i] = (i * 31 + (i >> 13)) & 0xff;
  return b;
}

describe('dfs put, small files (one PUT)', () => {
  it('sends the raw body with the file mtime in x-dfs-mtime and reports every store', async () => {
    const body = file('fileA.txt', 'This is the original version of file A.');
    const r = await dfs('put', 'fileA.txt');
    expect(r).toEqual({ code: 0, stdout: 'stored fileA.txt (39 B) on server1, server2\n', stderr: '' });
    expect(apiCalls()).toHaveLength(1);
    const put = seen()[0]!;
    expect(put.method).toBe('PUT');
    expect(put.url).toBe('/files/fileA.txt?to=all');
    expect(put.headers['x-dfs-mtime']).toBe(String(MTIME.getTime()));
    expect(put.headers['content-type']).toBe('application/octet-stream');
    expect(put.body.equals(body)).toBe(true);
  });

  it('--as names the key (percent-encoded per segment) and --to picks one store', async () => {
    file('local.txt', 'x');
    const r = await dfs('put', 'local.txt', '--as', 'docs/a b+c.txt', '--to', 'server1');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('stored local.txt as docs/a b+c.txt (1 B) on server1; replication copies it to the other stores\n');
    expect(seen()[0]!.url).toBe('/files/docs/a%20b%2Bc.txt?to=server1');
  });

  it('sends an empty file inline too', async () => {
    file('empty.txt', '');
    const r = await dfs('put', 'empty.txt');
    expect(r.code).toBe(0);
    expect(seen()[0]!.body.length).toBe(0);
  });

  it('exits 6 when only some stores took it, naming each failure', async () => {
    file('half.txt', 'half');
    const r = await dfs('put', 'half.txt');
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('stored half.txt (4 B) on server1\n');
    expect(r.stderr).toContain('dfs: not stored on server2: NoSuchBucket: The specified bucket does not exist');
  });

  it('exits 5 when no store took it', async () => {
    file('none.txt', 'none');
    const r = await dfs('put', 'none.txt');
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('dfs: none.txt (4 B) was stored on no store');
    expect(r.stderr).toContain('dfs: not stored on server1: TimeoutError: socket hang up');
  });

  it('maps a refused store name (400) to exit 2', async () => {
    file('refused.txt', 'r');
    const r = await dfs('put', 'refused.txt', '--to', 'server9');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown store "server9"');
  });

  it('exits 7 when another store holds a newer version, saying which and how to go on; --touch goes through', async () => {
    file('older.txt', 'an old draft');
    const r = await dfs('put', 'older.txt', '--to', 'server1');
    expect(r.code).toBe(7);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('not stored: server2 holds a newer version (mtime 2026-06-01T00:00:00.000Z)');
    const json = await dfs('put', 'older.txt', '--to', 'server1', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ error: 'Overruled', newer: { store: 'server2', mtime: '2026-06-01T00:00:00.000Z' } });
    const touched = await dfs('put', 'older.txt', '--to', 'server1', '--touch');
    expect(touched.code).toBe(0);
    expect(seen().at(-1)).toMatchObject({ method: 'PUT', url: '/files/older.txt?to=server1&touch=1' });
  });

  it('--json prints the answer with every store and what the CLI did', async () => {
    file('half.txt', 'half');
    const r = await dfs('put', 'half.txt', '--json');
    expect(r.code).toBe(6);
    expect(JSON.parse(r.stdout)).toEqual({
      key: 'half.txt',
      size: 4,
      mtime: MTIME.toISOString(),
      results: [{ store: 'server1', ok: true, etag: 'e' }, { store: 'server2', ok: false, error: 'NoSuchBucket: The specified bucket does not exist' }],
      file: 'half.txt',
      via: 'inline',
    });
  });

  it('falls back to the multipart flow when the server answers 413', async () => {
    const body = file('too-big-for-inline.txt', 'small for us, big for this server');
    const r = await dfs('put', 'too-big-for-inline.txt');
    expect(r.code).toBe(0);
    expect(posts('/uploads')).toEqual([{ key: 'too-big-for-inline.txt', size: body.length, mtime: MTIME.getTime(), to: 'all' }]);
    for (const s of STORES) expect(objects.get(`${s}/too-big-for-inline.txt`)?.equals(body)).toBe(true);
  });
});

describe('dfs put, large files (multipart through presigned URLs)', () => {
  const SIZE = 5 * 1024 * 1024 + 1234; // over the 4 MiB inline limit; 161 parts of 32 KiB

  it('reads each part once, sends it to every store, signs in batches of 100 and completes byte-exact', async () => {
    const body = file('big.bin', bytes(SIZE));
    const r = await dfs('put', 'big.bin');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe('stored big.bin (5.0 MiB, 161 parts) on server1, server2\n');
    expect(seen().some((s) => s.method === 'PUT' && s.url.startsWith('/files/'))).toBe(false);
    expect(posts('/uploads')).toEqual([{ key: 'big.bin', size: SIZE, mtime: MTIME.getTime(), to: 'all' }]);
    const signed = posts('/uploads/sign') as { parts: number[] }[];
    expect(signed.map((s) => s.parts.length)).toEqual([100, 61]);
    expect(signed.flatMap((s) => s.parts)).toEqual(Array.from({ length: 161 }, (_, i) => i + 1));
    for (const s of STORES) {
      expect(parts.get(`${s}/up-${s}`)?.size).toBe(161);
      expect(sha(objects.get(`${s}/big.bin`)!)).toBe(sha(body));
    }
    const [complete] = posts('/uploads/complete') as { uploads: { store: string; parts: { n: number }[] }[] }[];
    expect(complete!.uploads.map((u) => u.store)).toEqual(STORES);
    expect(complete!.uploads[0]!.parts.map((p) => p.n)).toEqual(Array.from({ length: 161 }, (_, i) => i + 1));
    expect(posts('/uploads/abort')).toEqual([]);
  });

  it('drops a store whose parts keep failing, completes the others, aborts it and exits 6', async () => {
    const body = file('flaky.bin', bytes(SIZE));
    const r = await dfs('put', 'flaky.bin');
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('stored flaky.bin (5.0 MiB, 161 parts) on server1\n');
    expect(r.stderr).toMatch(/dfs: not stored on server2: part \d+ of 161 failed 3 times \(HTTP 500 InternalError\); the upload there was given up/);
    expect(sha(objects.get('server1/flaky.bin')!)).toBe(sha(body));
    expect(objects.has('server2/flaky.bin')).toBe(false);
    expect((posts('/uploads/complete')[0] as { uploads: { store: string }[] }).uploads.map((u) => u.store)).toEqual(['server1']);
    expect(posts('/uploads/abort')).toEqual([{ key: 'flaky.bin', uploads: [{ store: 'server2', uploadId: 'flaky-server2' }] }]);
    // Retried, then given up: server2 did not get a PUT for every part.
    const server2Puts = seen().filter((s) => s.url.startsWith('/s3/server2/')).length;
    expect(server2Puts).toBeLessThan(161);
  });

  it('--json reports each store, the parts and the aborted upload', async () => {
    file('flaky.bin', bytes(SIZE));
    const r = await dfs('put', 'flaky.bin', '--json');
    expect(r.code).toBe(6);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      key: 'flaky.bin',
      size: SIZE,
      via: 'multipart',
      multipart: { partSize: PART, parts: 161, aborted: ['server2'], abortFailed: [] },
    });
    expect(out.results).toEqual([
      { store: 'server1', ok: true, etag: 'e' },
      { store: 'server2', ok: false, error: expect.stringContaining('failed 3 times (HTTP 500 InternalError)') },
    ]);
  });

  it('on Ctrl-C aborts the upload on every store and exits 130', async () => {
    file('hang.bin', bytes(SIZE));
    const arrived = new Promise<void>((resolve) => (onHeldPart = resolve));
    const { child, done } = start(['put', 'hang.bin']);
    await arrived;
    child.kill('SIGINT');
    const r = await done;
    onHeldPart = undefined;
    expect(r.code).toBe(130);
    expect(r.stderr).toBe('dfs: interrupted; the upload was aborted, nothing was stored\n');
    expect(posts('/uploads/abort')).toEqual([{ key: 'hang.bin', uploads: STORES.map((store) => ({ store, uploadId: `hang-${store}` })) }]);
    expect(posts('/uploads/complete')).toEqual([]);
  });
});

describe('dfs put, refused arguments (nothing sent)', () => {
  it.each([
    ['a missing file', ['put', 'nope.txt'], 'dfs: no such file: nope.txt'],
    ['a folder with no files', ['put', 'sub'], 'dfs: nothing to upload: sub holds no files'],
    ['a FIFO (opening it would wait for a writer)', ['put', 'fifo'], 'dfs: fifo is not a regular file'],
    ['an invalid --as', ['put', 'ok.txt', '--as', 'a//b'], 'dfs: invalid name "a//b": key contains an empty path segment ("//")'],
    ['an --as with a control character', ['put', 'ok.txt', '--as', 'x\u001b'], 'invalid name "x\\u001b": key contains a control character'],
    ['no FILE', ['put'], "missing required argument 'file'"],
  ])('exits 2 for %s', async (_what, args, message) => {
    mkdirSync(join(dir, 'sub'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    file('ok.txt', 'ok');
    const r = await dfs(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(seen()).toEqual([]);
  });

  it('prints the refusal as JSON with --json', async () => {
    const r = await dfs('put', 'nope.txt', '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'NoSuchFile', message: 'no such file: nope.txt' });
    expect(seen()).toEqual([]);
  });
});
