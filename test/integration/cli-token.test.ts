/**
 * Tokens through the real `node bin/dfs.js` against a fake API that checks bearer tokens as
 * handlers/http.ts does (401 without a valid one, 403 for a read token on a write route):
 * `dfs token create|list|revoke`, where the token comes from (DFS_TOKEN, the config file, the
 * local stack's local.json) and where it must never show (stdout, stderr, --json).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { runDfs, sendJson, startFakeApi, useCliSandbox, type FakeApi, type SeenRequest } from '../helpers/cli';
import { useTempDirs } from '../helpers/temp';

const WRITER = 'dfs_ann_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const READER = 'dfs_ro_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB';
const LOCAL = 'dfs_local_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC';
const FROM_FILE = 'dfs_file_DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD';
const REVOKED = 'dfs_gone_EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE';
const MADE = 'dfs_new_FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF';
const SECRETS = [WRITER, READER, LOCAL, FROM_FILE, REVOKED];
const SCOPES: Record<string, 'read' | 'write'> = { [WRITER]: 'write', [READER]: 'read', [LOCAL]: 'write', [FROM_FILE]: 'write' };
const NAMES: Record<string, string> = { [WRITER]: 'ann', [READER]: 'ro', [LOCAL]: 'local', [FROM_FILE]: 'file' };
const CREATED = '2024-05-01T12:00:00.000Z';
const INVOKE = '/2015-03-31/functions/s3-dfs-local-api/invocations';

let tokens: Array<{ name: string; scope: 'read' | 'write'; created: string; createdBy: string }> = [];

/** What the function would answer; `who` is the token's name, or `lambda-invoke` for a direct invoke. */
function route(method: string, path: string, body: Buffer, who: string): { status: number; body: unknown } {
  if (method === 'POST' && path === '/tokens') {
    const { name, scope } = JSON.parse(body.toString()) as { name: string; scope: 'read' | 'write' };
    if (tokens.some((t) => t.name === name)) return { status: 409, body: { error: 'Conflict', message: `a token named "${name}" exists; revoke it first, or choose another name` } };
    const info = { name, scope, created: CREATED, createdBy: who };
    tokens.push(info);
    return { status: 201, body: { ...info, token: MADE } };
  }
  if (method === 'GET' && path === '/tokens') return { status: 200, body: { tokens } };
  if (method === 'DELETE' && path.startsWith('/tokens/')) {
    const name = path.slice('/tokens/'.length);
    if (!tokens.some((t) => t.name === name)) return { status: 404, body: { error: 'NotFound', message: `no token named "${name}"` } };
    tokens = tokens.filter((t) => t.name !== name);
    return { status: 200, body: { revoked: name } };
  }
  if (method === 'GET' && path === '/files') return { status: 200, body: { files: [], next: null } };
  if (method === 'GET' && path === '/events') return { status: 200, body: { events: [], next: null } };
  if (method === 'GET' && path === '/locks') return { status: 200, body: { locks: [] } };
  if (method === 'DELETE' && path.startsWith('/files/')) return { status: 200, body: { key: path.slice(7), results: [{ store: 'server1', ok: true }] } };
  return { status: 404, body: { error: 'NoRoute', message: `no route for ${method} ${path}` } };
}

const WRITE_ROUTES = /^(POST|PUT|DELETE) |^GET \/tokens/;

function serve(req: SeenRequest, res: ServerResponse): void {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === INVOKE) {
    // A direct invoke: trusted by IAM, whatever its headers say.
    const d = JSON.parse(req.body.toString()) as { method: string; path: string; body?: string };
    const r = route(d.method, d.path, Buffer.from(d.body ?? '', 'base64'), 'lambda-invoke');
    return sendJson(res, 200, { statusCode: r.status, body: r.body });
  }
  const auth = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (auth === undefined) return sendJson(res, 401, { error: 'Unauthorized', message: 'this API needs a token: send "Authorization: Bearer <token>"' });
  const scope = SCOPES[auth];
  if (!scope) return sendJson(res, 401, { error: 'Unauthorized', message: 'the token is not valid: it was revoked, mistyped, or is for another stack' });
  if (scope === 'read' && WRITE_ROUTES.test(`${req.method} ${url.pathname}`)) {
    return sendJson(res, 403, { error: 'Forbidden', message: `token "${NAMES[auth]}" is read-only; this needs a write token` });
  }
  const r = route(req.method, decodeURIComponent(url.pathname), req.body, NAMES[auth]!);
  sendJson(res, r.status, r.body);
}

const sandbox = useCliSandbox(serve);
const tempDir = useTempDirs('dfs-token-');
const dfs = (args: string[], env: Record<string, string> = {}) => runDfs(args, { env: sandbox.env(env) });
const seen = () => sandbox.api.requests;
const configFile = () => join(sandbox.home, 'config', 'dfs', 'config.json');

beforeEach(() => {
  tokens = [{ name: 'ann', scope: 'write', created: CREATED, createdBy: 'local' }];
});

/** Neither the caller's token nor any other secret shows in what dfs printed. */
function expectNoSecret(r: { stdout: string; stderr: string }): void {
  for (const s of SECRETS) {
    expect(r.stdout).not.toContain(s);
    expect(r.stderr).not.toContain(s);
    // Not even the secret part on its own.
    expect(`${r.stdout}${r.stderr}`).not.toContain(s.slice(-43));
  }
}

describe('dfs token create', () => {
  it('prints the new token alone on stdout, and on stderr that it is shown only now and how to use it', async () => {
    const r = await dfs(['token', 'create', 'bob'], { DFS_TOKEN: WRITER });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${MADE}\n`);
    expect(r.stderr).toBe(
      'created token bob (read and write); it is shown only now, above, and cannot be read back\n' +
        `use it: export DFS_TOKEN=dfs_bob_… (the whole token), or put it as "token" in ${configFile()} (then chmod 600 it)\n`,
    );
    expect(seen()).toHaveLength(1);
    expect(seen()[0]).toMatchObject({ method: 'POST', url: '/tokens', headers: { authorization: `Bearer ${WRITER}`, 'content-type': 'application/json' } });
    expect(JSON.parse(seen()[0]!.body.toString())).toEqual({ name: 'bob', scope: 'write' });
    expectNoSecret(r);
  });

  it('--read-only asks for a read token; --json prints the API answer, the new token in it', async () => {
    const r = await dfs(['token', 'create', 'dash', '--read-only', '--json'], { DFS_TOKEN: WRITER });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toEqual({ name: 'dash', scope: 'read', created: CREATED, createdBy: 'ann', token: MADE });
    expect(JSON.parse(seen()[0]!.body.toString())).toEqual({ name: 'dash', scope: 'read' });
    expectNoSecret(r);
  });

  it('exits 1 when the name is taken, with the server\'s words', async () => {
    const r = await dfs(['token', 'create', 'ann'], { DFS_TOKEN: WRITER });
    expect(r).toMatchObject({ code: 1, stdout: '' });
    expect(r.stderr).toBe('dfs: the server refused the request (409 Conflict): a token named "ann" exists; revoke it first, or choose another name\n');
  });

  it.each(['Ann', 'a_b', '-x', 'a'.repeat(41)])('refuses the name %j with exit 2 before any request', async (name) => {
    const r = await dfs(['token', 'create', '--', name], { DFS_TOKEN: WRITER });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`dfs: invalid token name ${JSON.stringify(name)}: 1 to 40 of a-z, 0-9 and "-", starting with a letter or digit`);
    expect(seen()).toHaveLength(0);
  });

  it('exits 8 for a read-only token, saying so and where the token came from', async () => {
    const r = await dfs(['token', 'create', 'bob'], { DFS_TOKEN: READER });
    expect(r).toMatchObject({ code: 8, stdout: '' });
    expect(r.stderr).toBe('dfs: not allowed: token "ro" is read-only; this needs a write token (the token from DFS_TOKEN)\n');
    expectNoSecret(r);
  });

  it('goes through --via lambda as the direct request, trusted by IAM, with no token in it', async () => {
    const r = await dfs(['token', 'create', 'ops', '--via', 'lambda', '--json'], { DFS_LAMBDA_ENDPOINT: sandbox.api.url, DFS_ENDPOINT: 'http://127.0.0.1:9', DFS_TOKEN: WRITER });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'ops', createdBy: 'lambda-invoke', token: MADE });
    const invoke = seen().find((q) => q.url === INVOKE)!;
    expect(invoke.headers.authorization ?? '').not.toContain('Bearer');
    expect(invoke.body.toString()).not.toContain(WRITER);
    expect(JSON.parse(invoke.body.toString())).toEqual({
      method: 'POST',
      path: '/tokens',
      query: {},
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ name: 'ops', scope: 'write' })).toString('base64'),
      isBase64Encoded: true,
    });
  });
});

describe('dfs token list', () => {
  it('prints a table of the tokens, and --json the API answer', async () => {
    tokens.push({ name: 'dashboard', scope: 'read', created: '2024-05-02T08:30:00.000Z', createdBy: 'ann' });
    const r = await dfs(['token', 'list'], { DFS_TOKEN: WRITER });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(
      'NAME       SCOPE  CREATED               BY\n' + 'ann        write  2024-05-01 12:00:00Z  local\n' + 'dashboard  read   2024-05-02 08:30:00Z  ann\n',
    );
    expect(seen()[0]).toMatchObject({ method: 'GET', url: '/tokens', headers: { authorization: `Bearer ${WRITER}` } });
    const j = await dfs(['token', 'list', '--json'], { DFS_TOKEN: WRITER });
    expect(JSON.parse(j.stdout)).toEqual({ tokens });
    expectNoSecret(r);
    expectNoSecret(j);
  });

  it('says so on stderr when there are none', async () => {
    tokens = [];
    const r = await dfs(['token', 'list'], { DFS_TOKEN: WRITER });
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: 'no tokens\n' });
  });
});

describe('dfs token revoke', () => {
  it('revokes with -y and says so; --json prints {"revoked"}', async () => {
    const r = await dfs(['token', 'revoke', 'ann', '-y'], { DFS_TOKEN: WRITER });
    expect(r).toMatchObject({ code: 0, stdout: 'revoked token ann; requests with it are refused within seconds\n', stderr: '' });
    expect(seen()[0]).toMatchObject({ method: 'DELETE', url: '/tokens/ann', headers: { authorization: `Bearer ${WRITER}` } });
    tokens.push({ name: 'bob', scope: 'read', created: CREATED, createdBy: 'ann' });
    const j = await dfs(['token', 'revoke', 'bob', '-y', '--json'], { DFS_TOKEN: WRITER });
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ revoked: 'bob' });
  });

  it('refuses without -y when stdin is not a terminal, sending nothing', async () => {
    const r = await dfs(['token', 'revoke', 'ann'], { DFS_TOKEN: WRITER });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('dfs: not revoking ann: stdin is not a terminal to confirm on; add -y to revoke without asking\n');
    expect(seen()).toHaveLength(0);
  });

  it('exits 3 when there is no such token', async () => {
    const r = await dfs(['token', 'revoke', 'nobody', '-y', '--json'], { DFS_TOKEN: WRITER });
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'NotFound', message: 'no token named nobody' });
  });
});

describe('the bearer token', () => {
  it('goes with every request when DFS_TOKEN is set', async () => {
    const r = await dfs(['ls'], { DFS_TOKEN: WRITER });
    expect(r.code).toBe(0);
    expect(seen().length).toBeGreaterThan(0);
    for (const q of seen()) expect(q.headers.authorization).toBe(`Bearer ${WRITER}`);
  });

  it('is not sent when none is configured, and the 401 says how to get one (exit 8)', async () => {
    const r = await dfs(['ls']);
    expect(seen()).toHaveLength(1);
    expect(seen()[0]!.headers).not.toHaveProperty('authorization');
    expect(r).toMatchObject({ code: 8, stdout: '' });
    expect(r.stderr).toBe(
      'dfs: not signed in: this API needs a token: send "Authorization: Bearer <token>"; ' +
        `set DFS_TOKEN, or "token" in ${configFile()} (a write token can make one: dfs token create NAME)\n`,
    );
  });

  it('refused, names its source and never itself, in text and in --json', async () => {
    const r = await dfs(['ls'], { DFS_TOKEN: REVOKED });
    expect(r.code).toBe(8);
    expect(r.stderr).toBe(
      'dfs: not signed in: the token from DFS_TOKEN was refused (the token is not valid: it was revoked, mistyped, or is for another stack); ' +
        `set DFS_TOKEN, or "token" in ${configFile()} (a write token can make one: dfs token create NAME)\n`,
    );
    const j = await dfs(['ls', '--json'], { DFS_TOKEN: REVOKED });
    expect(j.code).toBe(8);
    expect(JSON.parse(j.stdout)).toMatchObject({ error: 'Unauthorized', tokenFrom: 'DFS_TOKEN', message: expect.stringContaining('the token from DFS_TOKEN was refused') });
    expectNoSecret(r);
    expectNoSecret(j);
  });

  it.each([
    ['get', ['get', 'fileA.txt']],
    ['rm', ['rm', 'fileA.txt', '-y']],
    ['watch', ['watch', '--count', '1', '--timeout', '5']],
    ['sync', ['sync']],
    ['token list', ['token', 'list']],
  ])('makes %s exit 8 with a refused token, and 8 with a read token on a write', async (_what, args) => {
    const refused = await dfs([...args, '--json'], { DFS_TOKEN: REVOKED, DFS_DEBUG: '1' });
    expect(refused.code).toBe(8);
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: 'Unauthorized', tokenFrom: 'DFS_TOKEN' });
    expectNoSecret(refused);
    if (args[0] === 'rm' || args[0] === 'sync' || args[0] === 'token') {
      const ro = await dfs([...args, '--json'], { DFS_TOKEN: READER, DFS_DEBUG: '1' });
      expect(ro.code).toBe(8);
      expect(JSON.parse(ro.stdout)).toMatchObject({ error: 'Forbidden', tokenFrom: 'DFS_TOKEN', message: expect.stringMatching(/^not allowed: token "ro" is read-only/) });
      expectNoSecret(ro);
    }
  });

  it('lets a read token read (ls, sync --dry-run goes as far as the read)', async () => {
    const r = await dfs(['ls'], { DFS_TOKEN: READER });
    expect(r.code).toBe(0);
    expect(seen()[0]!.headers.authorization).toBe(`Bearer ${READER}`);
  });

  it('never shows in network errors, even with DFS_DEBUG', async () => {
    const r = await dfs(['ls', '--endpoint', 'http://127.0.0.1:9'], { DFS_TOKEN: WRITER, DFS_DEBUG: '1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach the API at http:\/\/127\.0\.0\.1:9/);
    expectNoSecret(r);
  });

  it('that a header cannot carry is refused before any request, without being shown', async () => {
    const r = await dfs(['ls'], { DFS_TOKEN: `${WRITER}\r\nX-Evil: 1` });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('dfs: DFS_TOKEN is not a token: it holds spaces, line breaks or other characters a token never has\n');
    expect(seen()).toHaveLength(0);
    expectNoSecret(r);
  });
});

describe('the token from the config file', () => {
  const writeConfig = (mode: number) => {
    const dir = tempDir();
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ token: FROM_FILE }), { mode });
    chmodSync(file, mode);
    return file;
  };

  it('is used when the file is its owner\'s alone; DFS_TOKEN comes first', async () => {
    const file = writeConfig(0o600);
    const r = await dfs(['ls'], { DFS_CONFIG: file });
    expect(r.code).toBe(0);
    expect(seen()[0]!.headers.authorization).toBe(`Bearer ${FROM_FILE}`);
    const first = seen().length;
    await dfs(['ls'], { DFS_CONFIG: file, DFS_TOKEN: WRITER });
    expect(seen()[first]!.headers.authorization).toBe(`Bearer ${WRITER}`);
  });

  it.each([0o644, 0o640, 0o604])('is refused when the file has mode %o: exit 2 naming the file and chmod 600, nothing sent', async (mode) => {
    const file = writeConfig(mode);
    const r = await dfs(['ls'], { DFS_CONFIG: file });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `dfs: config file ${file} holds a token but others may read or change it (mode ${mode.toString(8)}); make it yours alone: chmod 600 ${file}\n`,
    );
    expect(seen()).toHaveLength(0);
    expectNoSecret(r);
  });

  it('refused by the server, is named by the file it came from', async () => {
    const dir = tempDir();
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ token: REVOKED }), { mode: 0o600 });
    const r = await dfs(['ls', '--json'], { DFS_CONFIG: file });
    expect(r.code).toBe(8);
    expect(JSON.parse(r.stdout)).toMatchObject({ tokenFrom: file, message: expect.stringContaining(`the token from ${file} was refused`) });
    expectNoSecret(r);
  });
});

describe('the local stack (local.json)', () => {
  let other: FakeApi;
  beforeAll(async () => {
    other = await startFakeApi(serve);
  });
  afterAll(() => other.close());
  beforeEach(() => other.clear());

  const stackDir = (endpoint: string, token = LOCAL) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'local.json'), JSON.stringify({ endpoint, lambdaEndpoint: endpoint, functionName: 's3-dfs-local-api', token }), { mode: 0o600 });
    return dir;
  };

  it('gives the endpoint and its token when nothing else names an endpoint', async () => {
    const r = await dfs(['ls'], { DFS_ENDPOINT: '', DFS_DATA_DIR: stackDir(sandbox.api.url) });
    expect(r.code).toBe(0);
    expect(seen()[0]!.headers.authorization).toBe(`Bearer ${LOCAL}`);
  });

  it('is found under DFS_ROOT/.dfs-data as bin/dfs.js points there', async () => {
    const root = tempDir();
    mkdirSync(join(root, '.dfs-data'));
    writeFileSync(join(root, '.dfs-data', 'local.json'), JSON.stringify({ endpoint: sandbox.api.url, token: LOCAL }), { mode: 0o600 });
    const env = sandbox.env({ DFS_ENDPOINT: '', DFS_ROOT: root });
    delete env.DFS_DATA_DIR;
    const r = await runDfs(['ls'], { env });
    expect(r.code).toBe(0);
    expect(seen()[0]!.headers.authorization).toBe(`Bearer ${LOCAL}`);
  });

  it('hands its token to an endpoint on its port under another local name', async () => {
    const r = await dfs(['ls'], { DFS_ENDPOINT: sandbox.api.url.replace('127.0.0.1', 'localhost'), DFS_DATA_DIR: stackDir(sandbox.api.url) });
    expect(r.code).toBe(0);
    expect(seen()[0]!.headers.authorization).toBe(`Bearer ${LOCAL}`);
  });

  it('keeps its token from another endpoint, even on this machine', async () => {
    const r = await dfs(['ls'], { DFS_ENDPOINT: other.url, DFS_DATA_DIR: stackDir(sandbox.api.url) });
    expect(r.code).toBe(8);
    expect(other.requests[0]!.headers).not.toHaveProperty('authorization');
    expect(seen()).toHaveLength(0);
  });

  it('says to restart the stack when its token is refused', async () => {
    const dir = stackDir(sandbox.api.url, REVOKED);
    const r = await dfs(['ls'], { DFS_ENDPOINT: '', DFS_DATA_DIR: dir });
    expect(r.code).toBe(8);
    expect(r.stderr).toContain(`the token from ${join(dir, 'local.json')} was refused`);
    expect(r.stderr).toContain('restart the local stack (npm start) to renew it, or set DFS_TOKEN');
    expectNoSecret(r);
  });
});

describe('an endpoint with a user name or password', () => {
  it('is refused as usage, without showing the password, before any request', async () => {
    const url = sandbox.api.url.replace('http://', 'http://ann:s3cret@');
    const cases: Array<[Record<string, string>, string[]]> = [
      [{ DFS_ENDPOINT: url }, []],
      [{ DFS_LAMBDA_ENDPOINT: url }, ['--via', 'lambda']],
    ];
    for (const [env, via] of cases) {
      const r = await dfs(['ls', '--json', ...via], env);
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: 'BadConfig', message: expect.stringContaining('a URL with a user name or password') });
      expect(r.stdout + r.stderr).not.toContain('s3cret');
    }
    const flag = await dfs(['ls', '--endpoint', url]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^dfs: --endpoint gives a URL with a user name or password \("http:\/\/\*\*\*@127\.0\.0\.1:\d+"\)/);
    expect(seen()).toHaveLength(0);
  });
});
