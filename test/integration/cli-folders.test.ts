/**
 * Issue 12, folders and several files: the real `dfs` against the real API handler and s3rver.
 * A folder with nested names, spaces and unicode goes up with `dfs put DIR` and comes back with
 * `dfs get PREFIX/` byte for byte; the safety rules of one file hold for each (never outside the
 * output folder, never over a file without --force; --skip-existing says "already up to date").
 */
import { mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Deps } from '../../lib/deps';
import { handler } from '../../handlers/api';
import { runBytes, testBytes, useCliStack } from '../helpers/cli-stack';
import { useTempDirs } from '../helpers/temp';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

jest.setTimeout(60_000);

const stack = useCliStack(() => handler, (d) => (mockDeps = d));
const tempDir = useTempDirs('dfs-folders-');

/** The tree: nested folders, spaces, unicode (NFC and wide), an emoji, an empty file, one over the inline limit. */
const TREE: Record<string, Buffer> = {
  'a b/c d.txt': Buffer.from('spaces in both'),
  'ünïcödé/日本語.txt': Buffer.from('wide names'),
  'emoji 🎉.txt': Buffer.from('party'),
  'deep/er/still/x.bin': testBytes(5 * 1024 * 1024 + 3, 7),
  'empty.txt': Buffer.alloc(0),
};

function makeTree(root: string): void {
  for (const [name, body] of Object.entries(TREE)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), body);
  }
  mkdirSync(join(root, 'no files here'));
}

/** Every file below `dir`, by its path with "/", and its bytes. */
function readTree(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p).split('\\').join('/')] = readFileSync(p);
    }
  };
  walk(dir);
  return out;
}

const dfs = (args: string[], cwd: string) => runBytes(args, { env: stack().env(), cwd });
const text = (r: { stdout: Buffer }) => r.stdout.toString();

describe('dfs put DIR and dfs get PREFIX/', () => {
  it('round-trips a folder with nested names, spaces and unicode, byte for byte', async () => {
    const src = join(tempDir(), 'album');
    mkdirSync(src);
    makeTree(src);
    const up = await dfs(['put', 'album', '--json'], join(src, '..'));
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    const doc = JSON.parse(text(up)) as { files: Array<{ key: string; size: number; results: Array<{ ok: boolean }> }>; notStarted: string[] };
    expect(doc.files.map((f) => f.key).sort()).toEqual(Object.keys(TREE).map((k) => `album/${k}`).sort());
    expect(doc.files.every((f) => f.results.length === 2 && f.results.every((x) => x.ok))).toBe(true);
    expect(doc.notStarted).toEqual([]);
    const big = await stack().s3.client.send(new GetObjectCommand({ Bucket: 'server2', Key: 'album/deep/er/still/x.bin' }));
    expect(Buffer.from(await big.Body!.transformToByteArray()).equals(TREE['deep/er/still/x.bin']!)).toBe(true);

    const out = join(tempDir(), 'restore');
    const down = await dfs(['get', 'album/', '-o', out], tempDir());
    expect(down.stderr).toBe('');
    expect(down.code).toBe(0);
    expect(text(down)).toMatch(/^saved 5 files \(5\.0 MiB\) of 5 names under album\/ in \d+:\d\d\n$/);
    const back = readTree(join(out, 'album'));
    expect(Object.keys(back).sort()).toEqual(Object.keys(TREE).sort());
    for (const [name, body] of Object.entries(TREE)) expect(back[name]!.equals(body)).toBe(true);
  });

  it('refuses to overwrite any existing file, writing nothing, unless --force', async () => {
    const out = join(tempDir(), 'again');
    mkdirSync(join(out, 'album', 'a b'), { recursive: true });
    writeFileSync(join(out, 'album', 'a b', 'c d.txt'), 'mine');
    const r = await dfs(['get', 'album/', '-o', out], tempDir());
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`dfs: not overwriting ${out}/album/a b/c d.txt; nothing written (add --force to replace, or --skip-existing to leave them)\n`);
    expect(Object.keys(readTree(out))).toEqual(['album/a b/c d.txt']);
    const forced = await dfs(['get', 'album/', '-o', out, '--force'], tempDir());
    expect(forced.code).toBe(0);
    expect(readFileSync(join(out, 'album', 'a b', 'c d.txt'), 'utf8')).toBe('spaces in both');
  });

  it('--skip-existing leaves existing files alone, saying which are up to date, without fetching them', async () => {
    const out = join(tempDir(), 'skip');
    const first = await dfs(['get', 'album/', '-o', out], tempDir());
    expect(first.code).toBe(0);
    writeFileSync(join(out, 'album', 'emoji 🎉.txt'), 'changed here');
    stack().api.clear();
    const r = await dfs(['get', 'album/', '-o', out, '--skip-existing'], tempDir());
    expect(r.code).toBe(0);
    const lines = text(r).split('\n');
    expect(lines).toContain(`${out}/album/a b/c d.txt: already up to date`);
    expect(lines).toContain(`${out}/album/deep/er/still/x.bin: already up to date`);
    expect(lines).toContain(`skipped ${out}/album/emoji 🎉.txt: it exists and differs; --force replaces it`);
    expect(readFileSync(join(out, 'album', 'emoji 🎉.txt'), 'utf8')).toBe('changed here');
    // The listing was evidence enough: no file was read.
    expect(stack().api.requests.filter((q) => q.url.startsWith('/files/'))).toEqual([]);
  });

  it('says "already up to date" for one identical file with --skip-existing (exit 0)', async () => {
    const out = join(tempDir(), 'one');
    expect((await dfs(['get', 'album/a b/c d.txt', '-o', out], tempDir())).code).toBe(0);
    const r = await dfs(['get', 'album/a b/c d.txt', '-o', out, '--skip-existing'], tempDir());
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(text(r)).toBe(`${out}/album/a b/c d.txt: already up to date\n`);
  });

  it('exits 3 for a prefix nothing is under, and 2 for --force with --skip-existing', async () => {
    const none = await dfs(['get', 'nothing-here/'], tempDir());
    expect(none).toMatchObject({ code: 3, stderr: 'dfs: no files starting with nothing-here/\n' });
    const both = await dfs(['get', 'album/', '--force', '--skip-existing'], tempDir());
    expect(both.code).toBe(2);
    expect(readdirSync(tempDir())).not.toContain('album');
  });
});

describe('dfs put of several files', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir();
    writeFileSync(join(dir, 'one.txt'), '1');
    writeFileSync(join(dir, 'two.txt'), '22');
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'three.txt'), '333');
    symlinkSync(join(dir, 'sub'), join(dir, 'link'));
  });

  it('stores each under the --as prefix and sums up', async () => {
    const r = await dfs(['put', 'one.txt', 'two.txt', '--as', 'multi/'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(text(r)).toMatch(/^stored 2 files \(3 B\) in \d+:\d\d(, \S+ \S+\/s)?\n$/);
    for (const key of ['multi/one.txt', 'multi/two.txt']) {
      const o = await stack().s3.client.send(new GetObjectCommand({ Bucket: 'server1', Key: key }));
      expect(await o.Body!.transformToString()).toBe(key.endsWith('one.txt') ? '1' : '22');
    }
  });

  it.each([
    [['put', 'one.txt', 'two.txt', '--as', 'multi'], 'dfs: --as "multi" must end with "/" for a folder or several files: it is the prefix their names go under\n'],
    [['put', 'one.txt', 'one.txt'], 'dfs: one.txt and one.txt would both be stored as "one.txt"; nothing sent\n'],
    [['put', 'one.txt', 'missing.txt'], 'dfs: no such file: missing.txt\n'],
    [['put', '-', 'one.txt', '--as', 'x/'], 'dfs: "-" (stdin) cannot be uploaded with other files; put it alone, with --as NAME\n'],
    [['put', 'link'], 'dfs: link is a symlink to a folder; name the folder itself\n'],
  ])('refuses %j with exit 2, sending nothing', async (args, message) => {
    stack().api.clear();
    const r = await dfs(args, dir);
    expect(r).toMatchObject({ code: 2, stderr: message });
    expect(stack().api.requests).toEqual([]);
  });

  it('--dry-run shows the plan and sends nothing', async () => {
    stack().api.clear();
    const r = await dfs(['put', 'one.txt', 'two.txt', '--as', 'dry/', '--dry-run'], dir);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(text(r)).toBe('one.txt  →  dry/one.txt  1 B\ntwo.txt  →  dry/two.txt  2 B\ndry run: would store 2 files (3 B) on every store; nothing sent\n');
    expect(stack().api.requests).toEqual([]);
  });

  it('rm --dry-run names the stores that would lose the file and deletes nothing', async () => {
    stack().api.clear();
    const r = await dfs(['rm', 'multi/one.txt', '--dry-run'], dir);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(text(r)).toBe('dry run: would delete multi/one.txt from server1, server2; nothing deleted\n');
    expect(stack().api.requests.map((q) => q.method)).toEqual(['GET']);
    expect(statSync(dir).isDirectory()).toBe(true);
    const still = await stack().s3.client.send(new GetObjectCommand({ Bucket: 'server1', Key: 'multi/one.txt' }));
    expect(await still.Body!.transformToString()).toBe('1');
  });
});
