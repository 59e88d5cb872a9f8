/**
 * Runs the real `node bin/dfs.js get …` against a fake API (node:http on 127.0.0.1) that serves
 * canned read answers, a presigned-style download and a fake Lambda Invoke endpoint.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReadAnswer } from '../../lib/types';
import { run } from '../../cli/main';
import { noRoute, runDfs, sendJson, startFakeApi, useCliSandbox, type SeenRequest } from '../helpers/cli';
import { useTempDirs } from '../helpers/temp';

const A = 'This is the original version of file A.';
const B1 = 'This is version 1 of file B.';
const B2 = 'This is version 2 of file B, which is more recent.'; // 50 bytes
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const T1 = '2024-05-01T10:00:00.000Z';
const T2 = '2024-05-02T11:30:00.000Z';

// 3 MiB and a bit of deterministic bytes, so a missed chunk or a reorder shows.
const BIG = Buffer.alloc(3 * 1024 * 1024 + 4321);
for (let i = 0; i < BIG.length; i += 1) BIG[i] = (i * 31 + (i >> 11)) & 0xff;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type Canned = { status: number; body: unknown };

let canned: Record<string, Canned> = {};

function single(key: string, text: string, stores: string[], extra: Partial<ReadAnswer> = {}): Canned {
  const copies = stores.map((store) => ({ store, size: Buffer.byteLength(text), etag: '"e"', mtime: T1 }));
  return { status: 200, body: { status: 'SINGLE', key, copies, content: { base64: b64(text) }, unavailable: [], ...extra } };
}

function version(stores: string[], text: string, mtime: string, newest: boolean) {
  return { stores, size: Buffer.byteLength(text), etag: `"${stores[0]}"`, mtime, newest, content: { base64: b64(text) } };
}

function buildCanned(): Record<string, Canned> {
  return {
    'fileA.txt': single('fileA.txt', A, ['server1', 'server2']),
    'fileC.txt': single('fileC.txt', 'This file only exists on SERVER 2.', ['server2']),
    'docs/deep/fileD.txt': single('docs/deep/fileD.txt', 'nested', ['server1']),
    'with space+plus%.txt': single('with space+plus%.txt', 'odd', ['server1']),
    'partial.txt': single('partial.txt', 'p', ['server1'], { unavailable: ['server2'] }),
    'fileB.txt': {
      status: 200,
      body: { status: 'DIFFERENT', key: 'fileB.txt', versions: [version(['server1'], B1, T1, false), version(['server2'], B2, T2, true)], unavailable: [] },
    },
    README: {
      status: 200,
      body: { status: 'DIFFERENT', key: 'README', versions: [version(['server1', 'server3'], 'one', T1, false), version(['server2'], 'two!', T2, true)], unavailable: [] },
    },
    'evil.txt': {
      status: 200,
      body: { status: 'DIFFERENT', key: 'evil.txt', versions: [version(['../../x'], 'bad', T1, false), version(['server2'], 'ok', T2, true)], unavailable: [] },
    },
    'big.bin': {
      status: 200,
      body: {
        status: 'SINGLE', key: 'big.bin', unavailable: [],
        copies: [{ store: 'server1', size: BIG.length, etag: '"x-2"', mtime: T2 }, { store: 'server2', size: BIG.length, etag: '"y"', mtime: T2 }],
        content: { url: `${sandbox.api.url}/blob/big?X-Amz-Signature=abc`, expires: '2030-01-01T00:00:00.000Z' },
      },
    },
    'truncated.bin': {
      status: 200,
      body: {
        status: 'SINGLE', key: 'truncated.bin', unavailable: [],
        copies: [{ store: 'server1', size: BIG.length, etag: '"x"', mtime: T2 }],
        content: { url: `${sandbox.api.url}/blob/truncated`, expires: '2030-01-01T00:00:00.000Z' },
      },
    },
    'expired.bin': {
      status: 200,
      body: {
        status: 'SINGLE', key: 'expired.bin', unavailable: [],
        copies: [{ store: 'server1', size: 10, etag: '"x"', mtime: T2 }],
        content: { url: `${sandbox.api.url}/blob/expired`, expires: '2020-01-01T00:00:00.000Z' },
      },
    },
    'missing.txt': { status: 404, body: { status: 'NOT_FOUND', key: 'missing.txt', unavailable: [] } },
    'refused.txt': { status: 400, body: { error: 'InvalidKey', message: 'key is not allowed here' } },
    'down.txt': { status: 503, body: { error: 'Unavailable', message: 'no store answered', unavailable: ['server1', 'server2'] } },
    'broken.txt': { status: 500, body: { error: 'Internal' } },
  };
}

function serve(req: SeenRequest, res: ServerResponse): void {
  const url = req.url;
  const json = (c: Canned) => sendJson(res, c.status, c.body);
  if (url.startsWith('/blob/big')) {
    res.writeHead(200, { 'content-length': BIG.length });
    // In pieces, so the client really streams.
    let off = 0;
    const next = () => {
      while (off < BIG.length) {
        const piece = BIG.subarray(off, off + 256 * 1024);
        off += piece.length;
        if (!res.write(piece)) return void res.once('drain', next);
      }
      res.end();
    };
    return next();
  }
  if (url === '/blob/truncated') {
    res.writeHead(200, { 'content-length': BIG.length });
    res.write(BIG.subarray(0, 1024 * 1024), () => res.destroy());
    return;
  }
  if (url === '/blob/expired') {
    res.writeHead(403, { 'content-type': 'application/xml' });
    return void res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
  }
  if (req.method === 'POST' && url === '/2015-03-31/functions/s3-dfs-local-api/invocations') {
    const direct = JSON.parse(req.body.toString('utf8')) as { method: string; path: string };
    if (direct.method !== 'GET' || !direct.path.startsWith('/files/')) return sendJson(res, 200, { statusCode: 404, body: { error: 'NoRoute' } });
    const key = direct.path.slice('/files/'.length);
    const c = canned[key] ?? { status: 404, body: { status: 'NOT_FOUND', key, unavailable: [] } };
    return sendJson(res, 200, { statusCode: c.status, body: c.body });
  }
  if (url.startsWith('/files/')) {
    const key = decodeURIComponent(url.slice('/files/'.length));
    return json(canned[key] ?? { status: 404, body: { status: 'NOT_FOUND', key, unavailable: [] } });
  }
  noRoute(req, res);
}

const sandbox = useCliSandbox(serve);
/** Raw request URLs seen by the fake API in this test, in order. */
const seen = () => sandbox.api.requests.map((r) => r.url);

beforeAll(() => {
  canned = buildCanned();
});

const tempDir = useTempDirs('dfs-get-');

const dfs = (args: string[], cwd: string, env: Record<string, string> = {}) => runDfs(args, { cwd, env: sandbox.env(env) });

/** Every file below `dir`, relative, sorted (hidden temp files included). */
function filesIn(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesIn(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

const read = (dir: string, name: string) => readFileSync(join(dir, name), 'utf8');

describe('dfs get', () => {
  it('saves a SINGLE file and exits 0', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'fileA.txt'], dir);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(`saved fileA.txt (${A.length} B, identical on server1, server2)\n`);
    expect(filesIn(dir)).toEqual(['fileA.txt']);
    expect(read(dir, 'fileA.txt')).toBe(A);
    expect(statSync(join(dir, 'fileA.txt')).mtime.toISOString()).toBe(T1);
  });

  it('creates the folders of a nested name inside -o DIR', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'docs/deep/fileD.txt', '-o', 'out'], dir);
    expect(r.code).toBe(0);
    expect(filesIn(dir)).toEqual(['out/docs/deep/fileD.txt']);
    expect(r.stdout).toContain('saved out/docs/deep/fileD.txt (6 B, only on server1)');
  });

  it('percent-encodes the name in the URL path', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'with space+plus%.txt'], dir);
    expect(r.code).toBe(0);
    expect(seen()).toContain('/files/with%20space%2Bplus%25.txt');
    expect(read(dir, 'with space+plus%.txt')).toBe('odd');
  });

  it('saves each version of a DIFFERENT file after its stores and exits 4', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'fileB.txt'], dir);
    expect(r.code).toBe(4);
    expect(filesIn(dir)).toEqual(['fileB.server1.txt', 'fileB.server2.txt']);
    expect(read(dir, 'fileB.server1.txt')).toBe(B1);
    expect(read(dir, 'fileB.server2.txt')).toBe(B2);
    expect(r.stdout).toMatch(/fileB\.txt differs between stores; saved 2 versions/);
    expect(r.stdout).toMatch(/fileB\.server2\.txt +50 B +2024-05-02 11:30:00Z +server2 +\(newest\)/);
    expect(r.stdout).toMatch(/fileB\.server1\.txt +28 B +2024-05-01 10:00:00Z +server1\n/);
  });

  it('joins the stores of a shared version with "+" and appends them to a name without extension', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'README'], dir);
    expect(r.code).toBe(4);
    expect(filesIn(dir)).toEqual(['README.server1+server3', 'README.server2']);
  });

  it('--resolve newest saves only the newest version as NAME and exits 0', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'fileB.txt', '--resolve', 'newest'], dir);
    expect(r.code).toBe(0);
    expect(filesIn(dir)).toEqual(['fileB.txt']);
    expect(read(dir, 'fileB.txt')).toBe(B2);
    expect(r.stdout).toContain('saved fileB.txt (50 B, version on server2, the newest of 2 versions; other versions on server1)');
  });

  it('--resolve STORE saves that store\'s version', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'fileB.txt', '--resolve', 'server1'], dir);
    expect(r.code).toBe(0);
    expect(read(dir, 'fileB.txt')).toBe(B1);
  });

  it('--resolve with a store that holds no copy is a usage error listing the stores present', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'fileB.txt', '--resolve', 'server9'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('server9 holds no copy of fileB.txt; stores present: server1, server2');
    expect(filesIn(dir)).toEqual([]);
  });

  it('refuses to overwrite without --force, names the file, and leaves it untouched', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'fileB.server2.txt'), 'mine');
    const r = await dfs(['get', 'fileB.txt'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not overwriting ./fileB.server2.txt; nothing written (add --force to replace)');
    expect(filesIn(dir)).toEqual(['fileB.server2.txt']); // fileB.server1.txt was not written either
    expect(read(dir, 'fileB.server2.txt')).toBe('mine');
  });

  it('--force overwrites', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'fileA.txt'), 'mine');
    const r = await dfs(['get', 'fileA.txt', '--force'], dir);
    expect(r.code).toBe(0);
    expect(read(dir, 'fileA.txt')).toBe(A);
  });

  it('streams a presigned URL body of a few MiB to disk, quietly when stderr is not a terminal', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'big.bin'], dir);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe('saved big.bin (3.0 MiB, identical on server1, server2)\n');
    expect(filesIn(dir)).toEqual(['big.bin']);
    expect(sha(readFileSync(join(dir, 'big.bin')))).toBe(sha(BIG));
  });

  it('leaves nothing behind when a download is cut short', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'truncated.bin'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/download of \.\/truncated\.bin failed|received \d+ bytes, expected/);
    expect(filesIn(dir)).toEqual([]);
  });

  it('says the link may have expired when the download is refused', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'expired.bin'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('download refused (403); the link may have expired');
    expect(filesIn(dir)).toEqual([]);
  });

  it('NOT_FOUND: message on stderr, exit 3, nothing written', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'missing.txt'], dir);
    expect(r).toMatchObject({ code: 3, stdout: '', stderr: 'dfs: missing.txt: not found on any store\n' });
    expect(filesIn(dir)).toEqual([]);
  });

  it('warns about stores that did not answer', async () => {
    const dir = tempDir();
    const r = await dfs(['get', 'partial.txt'], dir);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('dfs: warning: server2 did not answer');
  });

  it.each([
    { what: 'a 400 from the server', name: 'refused.txt', code: 2, message: 'dfs: key is not allowed here' },
    { what: 'a 503', name: 'down.txt', code: 5, message: 'no store answered (server1, server2)' },
    { what: 'a 500', name: 'broken.txt', code: 1, message: 'the server failed (500 Internal)' },
    { what: 'an unsafe store name in the answer', name: 'evil.txt', code: 1, message: 'cannot be part of a file name' },
  ])('maps $what to exit $code, writing nothing', async ({ name, code, message }) => {
    const dir = tempDir();
    const r = await dfs(['get', name], dir);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
    expect(filesIn(dir)).toEqual([]);
  });

  it('exits 1 with advice when the API cannot be reached', async () => {
    const dir = tempDir();
    const closed = await startFakeApi(noRoute);
    await closed.close();
    const port = new URL(closed.url).port;
    const r = await dfs(['get', 'fileA.txt', '--endpoint', `http://127.0.0.1:${port}`], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach the API at http://127.0.0.1:${port} (ECONNREFUSED); the endpoint comes from --endpoint`);
  });

  describe('--json', () => {
    it('prints the answer with inline content shortened, plus what was saved', async () => {
      const dir = tempDir();
      const r = await dfs(['get', 'fileB.txt', '--json'], dir);
      expect(r.code).toBe(4);
      const out = JSON.parse(r.stdout);
      expect(out).toMatchObject({ status: 'DIFFERENT', key: 'fileB.txt', saved: ['./fileB.server1.txt', './fileB.server2.txt'] });
      expect(out.versions.map((v: { content: unknown }) => v.content)).toEqual([{ inlineBytes: 28 }, { inlineBytes: 50 }]);
    });

    it('keeps download URLs', async () => {
      const dir = tempDir();
      const r = await dfs(['get', 'big.bin', '--json', '-o', 'x'], dir);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ status: 'SINGLE', content: { url: expect.stringContaining('/blob/big') }, saved: ['x/big.bin'] });
    });

    it('prints NOT_FOUND as the answer and errors as {"error","message"}', async () => {
      const dir = tempDir();
      const nf = await dfs(['get', 'missing.txt', '--json'], dir);
      expect(nf.code).toBe(3);
      expect(JSON.parse(nf.stdout)).toEqual({ status: 'NOT_FOUND', key: 'missing.txt', unavailable: [], saved: [] });
      const down = await dfs(['get', 'down.txt', '--json'], dir);
      expect(down.code).toBe(5);
      expect(JSON.parse(down.stdout)).toMatchObject({ error: 'Unavailable', message: expect.any(String), unavailable: ['server1', 'server2'] });
      writeFileSync(join(dir, 'fileA.txt'), 'mine');
      const exists = await dfs(['get', 'fileA.txt', '--json'], dir);
      expect(exists.code).toBe(1);
      expect(JSON.parse(exists.stdout)).toMatchObject({ error: 'Exists', existing: ['./fileA.txt'] });
      const usage = await dfs(['get', '--json'], dir);
      expect(usage.code).toBe(2);
      expect(JSON.parse(usage.stdout)).toMatchObject({ error: 'Usage', message: expect.stringContaining("missing required argument 'name'") });
    });
  });

  describe('endpoint', () => {
    it('comes from the config file when no flag or DFS_ENDPOINT is set', async () => {
      const dir = tempDir();
      mkdirSync(join(sandbox.home, 'config', 'dfs'), { recursive: true });
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ endpoint: sandbox.api.url }));
      const r = await dfs(['get', 'fileC.txt', '-o', 'out'], dir, { DFS_ENDPOINT: '', DFS_CONFIG: join(dir, 'config.json') });
      expect(r.code).toBe(0);
      expect(read(dir, 'out/fileC.txt')).toBe('This file only exists on SERVER 2.');
    });

    it('--endpoint wins over DFS_ENDPOINT', async () => {
      const dir = tempDir();
      const r = await dfs(['get', 'fileA.txt', '--endpoint', sandbox.api.url], dir, { DFS_ENDPOINT: 'http://127.0.0.1:9' });
      expect(r.code).toBe(0);
    });
  });

  describe('--via lambda', () => {
    it('invokes the function with the direct request {"method":"GET","path":"/files/NAME"} and handles the answers like HTTP', async () => {
      const dir = tempDir();
      const env = { DFS_LAMBDA_ENDPOINT: sandbox.api.url, DFS_ENDPOINT: 'http://127.0.0.1:9', DFS_TOKEN: 'dfs_ann_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };
      const b = await dfs(['get', 'fileB.txt', '--via', 'lambda', '--resolve', 'newest'], dir, env);
      expect(b).toMatchObject({ code: 0 });
      expect(read(dir, 'fileB.txt')).toBe(B2);
      // IAM decides who may invoke: no token travels in the payload.
      expect(JSON.parse(sandbox.api.requests.at(-1)!.body.toString())).toEqual({ method: 'GET', path: '/files/fileB.txt', query: {}, headers: {} });
      const nf = await dfs(['get', 'missing.txt', '--via', 'lambda'], dir, env);
      expect(nf.code).toBe(3);
      const down = await dfs(['get', 'down.txt', '--via', 'lambda'], dir, env);
      expect(down.code).toBe(5);
    });
  });

  describe('bad names', () => {
    const BAD: Array<[label: string, name: string, why: RegExp]> = [
      ['empty', '', /key is empty/],
      ['/a', '/a', /starts with "\/"/],
      ['a//b', 'a//b', /empty path segment/],
      ['../x', '../x', /"\." or "\.\." segment/],
      ['a/../b', 'a/../b', /"\." or "\.\." segment/],
      ['./a', './a', /"\." or "\.\." segment/],
      ['a/.', 'a/.', /"\." or "\.\." segment/],
      ['..', '..', /"\." or "\.\." segment/],
      ['newline', 'a\nb', /control character/],
      ['tab', 'a\tb', /control character/],
      ['DEL', 'a\u007fb', /control character/],
      ['C1 CSI (U+009B)', 'a\u009bb', /control character/],
      ['ESC sequence', '\u001b[31mred', /control character/],
      ['1025 ASCII bytes', 'x'.repeat(1025), /1025 bytes of UTF-8, over the limit of 900/],
      ['1026 UTF-8 bytes in 513 characters', 'é'.repeat(513), /1026 bytes of UTF-8/],
      ['backslash', 'a\\b', /backslash/],
    ];

    it.each(BAD)('refuses %s with exit 2, before any request, writing nothing', async (_label, name, why) => {
      const dir = tempDir();
      const before = seen().length;
      const r = await dfs(['get', name], dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^dfs: invalid name ".*": /);
      expect(r.stderr).toMatch(why);
      expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/); // echoed escaped, not raw
      expect(filesIn(dir)).toEqual([]);
      expect(seen().length).toBe(before);
    });

    it('refuses a NUL byte (argv cannot carry one, so in-process)', async () => {
      let stderr = '';
      const before = seen().length;
      const code = await run(['get', 'a\u0000b'], { stdout: () => {}, stderr: (t) => void (stderr += t), env: { DFS_ENDPOINT: sandbox.api.url }, interactive: false });
      expect(code).toBe(2);
      expect(stderr).toContain('invalid name "a\\u0000b": key contains a control character');
      expect(seen().length).toBe(before);
    });
  });
});
