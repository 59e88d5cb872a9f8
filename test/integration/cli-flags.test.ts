/**
 * Issue 12, conventions: the real `dfs` against a fake API on 127.0.0.1. Global flags before or
 * after the command, -q, -v (request ids, never a token), version, config keys checked,
 * completion scripts, ls aligned by display width, the /proc case, the idle timeout, and Ctrl-C
 * on long commands saying what was left (exit 130).
 */
import { execFileSync } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import stringWidth from 'string-width';
import type { FileEntry } from '../../lib/types';
import { noRoute, runDfs, sendJson, startDfs, useCliSandbox, type SeenRequest } from '../helpers/cli';
import { useTempDirs } from '../helpers/temp';

const T = '2024-05-01T10:00:00.000Z';
const TOKEN = `dfs_flagtester_${'S'.repeat(43)}`;
const both = { server1: { size: 5, etag: 'e', mtime: T }, server2: { size: 5, etag: 'e', mtime: T } };
const FILES: FileEntry[] = [
  { name: 'ascii.txt', size: 5, mtime: T, state: 'same', stores: both },
  { name: 'emoji🎉🎉.txt', size: 5, mtime: T, state: 'same', stores: both },
  { name: 'hang/a.txt', size: 5, mtime: T, state: 'same', stores: both },
  { name: 'hang/b.txt', size: 5, mtime: T, state: 'same', stores: both },
  { name: '日本語のファイル.txt', size: 5, mtime: T, state: 'same', stores: both },
];
const single = (key: string, content: object) => ({ status: 'SINGLE', key, copies: [{ store: 'server1', size: 5, etag: '"e"', mtime: T }], content, unavailable: [] });

let held: ServerResponse[] = [];
let onHeld: (() => void) | undefined;

function serve(req: SeenRequest, res: ServerResponse): void {
  const url = new URL(req.url, 'http://x');
  res.setHeader('apigw-requestid', 'req-1234');
  const hold = () => {
    held.push(res);
    onHeld?.();
  };
  if (url.pathname === '/locks') return sendJson(res, 200, { locks: [] });
  if (url.pathname === '/files') {
    const prefix = url.searchParams.get('prefix') ?? '';
    return sendJson(res, 200, { files: FILES.filter((f) => f.name.startsWith(prefix)), next: null, unavailable: [] });
  }
  if (url.pathname === '/files/slow.txt') return hold(); // never answered: the idle timeout ends it
  if (url.pathname.startsWith('/files/hang/') && req.method === 'GET') return sendJson(res, 200, single(decodeURIComponent(url.pathname.slice(7)), { url: `${sandbox.api.url}/download/hang`, expires: T }));
  if (url.pathname === '/download/hang') {
    res.writeHead(200, { 'content-length': '5' });
    res.write('he'); // two bytes, then nothing: Ctrl-C comes meanwhile
    return hold();
  }
  if (url.pathname.startsWith('/files/') && req.method === 'GET') return sendJson(res, 200, single(decodeURIComponent(url.pathname.slice(7)), { base64: Buffer.from('hello').toString('base64') }));
  if (url.pathname.startsWith('/files/') && req.method === 'PUT') {
    const key = decodeURIComponent(url.pathname.slice(7));
    if (key.includes('hang')) return hold();
    return sendJson(res, 200, { key, size: req.body.length, mtime: T, results: [{ store: 'server1', ok: true }, { store: 'server2', ok: true }] });
  }
  noRoute(req, res);
}

const sandbox = useCliSandbox(serve);
const tempDir = useTempDirs('dfs-flags-');
afterEach(() => {
  for (const r of held.splice(0)) r.destroy();
  onHeld = undefined;
});

const dfs = (args: string[], extra: Record<string, string> = {}, cwd = sandbox.home) => runDfs(args, { cwd, env: sandbox.env({ TZ: 'UTC', DFS_TOKEN: TOKEN, ...extra }) });

describe('global flags', () => {
  it('takes --json, --endpoint and -q before or after the command, with the same outcome', async () => {
    const env = { DFS_ENDPOINT: 'http://127.0.0.1:9' }; // --endpoint must win over it
    const before = await dfs(['--json', '--endpoint', sandbox.api.url, 'ls'], env);
    const after = await dfs(['ls', '--json', '--endpoint', sandbox.api.url], env);
    const mixed = await dfs(['--endpoint', sandbox.api.url, 'ls', '--json'], env);
    expect(before).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(before.stdout).count).toBe(FILES.length);
    expect(after).toEqual(before);
    expect(mixed).toEqual(before);
    expect(await dfs(['-q', 'get', 'ascii.txt', '-o', tempDir()])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await dfs(['get', 'ascii.txt', '-q', '-o', tempDir()])).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('-v prints each request with its status, time and request id, never the token', async () => {
    const r = await dfs(['-v', 'ls']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^dfs: debug: GET \/files\?limit=1000 → 200 in \d+ ms \(request id req-1234\)$/m);
    expect(r.stderr).toMatch(/^dfs: debug: GET \/locks → 200 in \d+ ms \(request id req-1234\)$/m);
    expect(r.stderr).toContain('token from DFS_TOKEN');
    expect(r.stderr).not.toContain('SSSS');
    expect((await dfs(['ls', '--debug'])).stderr).toEqual(expect.stringContaining('dfs: debug: GET /files'));
  });

  it('prints the version with the commit it runs from, as text and JSON', async () => {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: join(__dirname, '..', '..') }).toString().trim();
    const r = await dfs(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^dfs ${require('../../package.json').version} \\(commit ${head.slice(0, 10)}, built \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ\\)\\nnode v\\d+`));
    expect(JSON.parse((await dfs(['--json', 'version'])).stdout)).toMatchObject({ commit: head, node: process.version });
  });

  it('refuses a config file with an unknown key, naming the known ones (exit 2, nothing sent)', async () => {
    const config = join(tempDir(), 'config.json');
    writeFileSync(config, JSON.stringify({ endpont: 'https://example.com' }));
    sandbox.api.clear();
    const r = await dfs(['ls'], { DFS_CONFIG: config });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `dfs: config file ${config}: unknown key "endpont" (did you mean "endpoint"?); the keys are endpoint, lambdaEndpoint, functionName, token, connectTimeout, idleTimeout\n`,
    );
    expect(sandbox.api.requests).toEqual([]);
  });
});

describe('dfs completion', () => {
  it('prints a bash script that completes commands, subcommands and flags', async () => {
    const r = await dfs(['completion', 'bash']);
    expect(r.code).toBe(0);
    const script = join(tempDir(), 'dfs.bash');
    writeFileSync(script, r.stdout);
    const complete = (line: string) =>
      execFileSync('bash', ['-c', `source ${script}; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _dfs; printf '%s\\n' "\${COMPREPLY[@]}"`]).toString().trim().split('\n');
    expect(complete("dfs ''")).toEqual(expect.arrayContaining(['get', 'cat', 'stat', 'put', 'ls', 'token', 'completion']));
    expect(complete('dfs st')).toEqual(['stat']);
    expect(complete('dfs get --sk')).toEqual(['--skip-existing']);
    expect(complete('dfs --json get --')).toEqual(expect.arrayContaining(['--force', '--json', '--endpoint', '--output-dir']));
    expect(complete('dfs token cr')).toEqual(['create']);
    expect(complete('dfs token create --re')).toEqual(['--read-only']);
  });

  it('prints a zsh script with every command', async () => {
    const r = await dfs(['completion', 'zsh']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^#compdef dfs\n/);
    for (const c of ['get', 'cat', 'stat', 'put', 'rm', 'ls', 'sync', 'watch', 'lock', 'unlock', 'locks', 'token', 'version']) expect(r.stdout).toContain(`'${c}:`);
    expect(r.stdout).toContain("'--skip-existing[leave files that exist alone, saying whether they are up to date]'");
    const zsh = ['/usr/bin/zsh', '/bin/zsh'].find((p) => existsSync(p));
    // .ci/run installs zsh; a machine without it still checks the script's content above.
    if (zsh) execFileSync(zsh, ['-n', '-c', r.stdout]);
  });

  it('refuses another shell (exit 2)', async () => {
    expect(await dfs(['completion', 'fish'])).toMatchObject({ code: 2, stderr: 'dfs: no completion for "fish"; the shells are bash and zsh\n' });
  });
});

describe('dfs ls', () => {
  it('aligns columns by display width with wide characters and emoji', async () => {
    const r = await dfs(['ls']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(FILES.length + 1);
    // SIZE is right-aligned: its column ends at the same display column on every line.
    const sizeEnds = lines.map((l) => stringWidth(l.slice(0, l.indexOf(l.startsWith('#') ? 'SIZE' : ' B ') + (l.startsWith('#') ? 4 : 2))));
    expect(new Set(sizeEnds).size).toBe(1);
    const stateAt = lines.map((l) => stringWidth(l.slice(0, l.search(/ (STATE|same) /) + 1)));
    expect(new Set(stateAt).size).toBe(1);
  });
});

describe('where a command cannot go', () => {
  // Node's recursive mkdir never returned there: the test's timeout is what catches a hang.
  it('returns from get -o /proc/nope with a clear error (exit 1)', async () => {
    const r = await dfs(['get', 'ascii.txt', '-o', '/proc/nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('dfs: cannot create the folder /proc/nope (ENOENT: no such file or directory); nothing written\n');
  });

  it('gives up on an API that stops answering after the idle timeout, saying which and how to change it', async () => {
    const r = await dfs(['get', 'slow.txt', '-o', tempDir()], { DFS_IDLE_TIMEOUT: '0.5' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `dfs: ${sandbox.api.url} stopped answering: nothing came for 0.5 s (timeouts from DFS_IDLE_TIMEOUT; DFS_CONNECT_TIMEOUT / DFS_IDLE_TIMEOUT or "connectTimeout" / "idleTimeout" (seconds) in the config file change them)\n`,
    );
  });
});

describe('Ctrl-C', () => {
  /** Starts dfs, waits until `holds` requests hang at the fake API, then sends SIGINT. */
  async function interrupt(args: string[], holds: number, cwd: string) {
    const reached = new Promise<void>((resolve) => {
      onHeld = () => {
        if (held.length >= holds) resolve();
      };
    });
    const run = startDfs(args, { cwd, env: sandbox.env({ DFS_TOKEN: TOKEN }) });
    await reached;
    run.child.kill('SIGINT');
    return run.done;
  }

  it('on put of a folder: says how many were stored and what was left, exit 130', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'up'));
    for (const n of ['a', 'b', 'c-hang', 'd-hang', 'e', 'f']) writeFileSync(join(dir, 'up', `${n}.txt`), n);
    const r = await interrupt(['put', 'up', '--jobs', '2'], 2, dir);
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/^stored 2 files \(2 B\) in /);
    expect(r.stderr).toBe(
      'dfs: interrupted: 2 files stored, 2 stopped in flight (uploads in parts aborted; a small one may have landed, dfs ls shows), 2 files not started; run the same dfs put again to finish\n',
    );
  });

  it('on get of a prefix: says what was saved, leaves no partial file, exit 130', async () => {
    const dir = tempDir();
    const r = await interrupt(['get', 'hang/', '-o', dir, '--jobs', '1'], 1, dir);
    expect(r.code).toBe(130);
    expect(r.stderr).toBe('dfs: interrupted: 0 files saved, the one in progress removed (no partial file left), 1 name not fetched\n');
    const left = existsSync(join(dir, 'hang')) ? readdirSync(join(dir, 'hang')) : [];
    expect(left).toEqual([]);
  });

  it('on get of one file: says it was not saved, exit 130', async () => {
    const dir = tempDir();
    const r = await interrupt(['get', 'hang/a.txt', '-o', dir], 1, dir);
    expect(r.code).toBe(130);
    expect(r.stderr).toBe('dfs: interrupted: hang/a.txt not saved; no partial file left\n');
    expect(readdirSync(join(dir, 'hang'))).toEqual([]);
  });
});
