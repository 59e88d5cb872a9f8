import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startLocalStack, type LocalStack } from '../../scripts/stack';
import { createS3Client } from '../../lib/config';

/*
 * Locks through the real `dfs` against the local stack (sls offline, the real handlers, s3rver):
 * a file locked at server1 keeps what replication brings from server2 in the lock's queue, the
 * stores differ meanwhile, and the unlock applies it, as dfs watch shows step by step. Then the
 * refusals, each before anything is written. The steps build on each other, so they run in order.
 */
const DFS = resolve(__dirname, '../../bin/dfs.js');
const dataDir = mkdtempSync(join(tmpdir(), 'dfs-e2e-locks-'));
let stack: LocalStack;
let s3: S3Client;

beforeAll(async () => {
  stack = await startLocalStack({ dataDir, reset: true, quiet: true });
  s3 = createS3Client({ endpoint: stack.s3Endpoint });
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The real dfs against the stack, stdin not a terminal; the stack's own token (named "local") unless DFS_TOKEN says otherwise. */
function dfs(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [DFS, ...args], {
    input: '',
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, DFS_ENDPOINT: stack.apiUrl, DFS_DATA_DIR: stack.dataDir, TZ: 'UTC', ...env },
  });
}

const json = (r: SpawnSyncReturns<string>) => JSON.parse(r.stdout) as Record<string, unknown> & { locks?: Lock[] };
const bucket = (store: string) => stack.stores.find((s) => s.name === store)!.bucket;
const freshDir = () => mkdtempSync(join(tmpdir(), 'dfs-locks-out-'));

interface Lock {
  key: string;
  store: string;
  holder: string;
  next: number;
  applied: number;
}

async function objectText(store: string, key: string): Promise<string | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket(store), Key: key }));
    return await res.Body!.transformToString();
  } catch {
    return undefined;
  }
}

/** Polls `probe` until it returns true or `ms` pass: a condition, not a sleep. */
async function waitFor(probe: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`condition not met within ${ms} ms`);
}

const locks = () => json(dfs(['locks', '--json'])).locks!;

const V2 = 'This is version 2 of file B, which is more recent.';
const HELD = 'Written straight into server2 while fileB.txt was locked at server1.';

describe('dfs lock and unlock against the local stack', () => {
  let watch: ChildProcess | undefined;
  const seen: { action: string; key: string; who?: string; to?: string[]; reason?: string }[] = [];

  afterAll(() => {
    watch?.kill('SIGINT');
  });

  it('starts from stores made equal, fileB.txt at index 1', () => {
    expect(dfs(['sync']).status).toBe(0);
    expect(dfs(['get', 'fileB.txt', '-o', freshDir()]).status).toBe(0);
    const files = json(dfs(['ls', '--json'])).files as { index: number; name: string; lock: unknown }[];
    expect(files.map((f) => [f.index, f.name, f.lock])).toEqual([
      [0, 'fileA.txt', null],
      [1, 'fileB.txt', null],
      [2, 'fileC.txt', null],
    ]);
  }, 60_000);

  it('locks index 1, naming fileB.txt, at the first store, for the token\'s name', () => {
    // From the last minute, not --since-start: a watch slow to start still sees the lock it missed.
    watch = spawn(process.execPath, [DFS, 'watch', '--json'], { env: { ...process.env, DFS_ENDPOINT: stack.apiUrl, DFS_TOKEN: stack.token } });
    let buffered = '';
    watch.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) if (l.trim()) seen.push(JSON.parse(l));
    });

    const text = dfs(['lock', '1', '--reason', 'e2e', '--ttl', '10m']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^locked fileB\.txt \(#1\) at server1 for local until \d{4}-\d\d-\d\d \d\d:\d\d\n$/);
    expect(locks()).toEqual([expect.objectContaining({ key: 'fileB.txt', store: 'server1', holder: 'local', reason: 'e2e', next: 1, applied: 0 })]);
    const ls = dfs(['ls']);
    expect(ls.stdout).toMatch(/^1 {2}fileB\.txt .* same {8}local@server1\(0\) {2}server1,server2$/m);
    expect(ls.stdout).toMatch(/^0 {2}fileA\.txt .* same {8}- {17}server1,server2$/m);
  });

  it('holds what replication brings from server2: the stores differ until the unlock', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket('server2'), Key: 'fileB.txt', Body: HELD }));
    await waitFor(() => locks().some((l) => l.key === 'fileB.txt' && l.next - 1 - l.applied >= 1), 20_000);
    expect(await objectText('server1', 'fileB.txt')).toBe(V2);

    const dir = freshDir();
    const get = dfs(['get', 'fileB.txt', '-o', dir]);
    expect(get.status).toBe(4);
    expect(readFileSync(join(dir, 'fileB.server1.txt'), 'utf8')).toBe(V2);
    expect(readFileSync(join(dir, 'fileB.server2.txt'), 'utf8')).toBe(HELD);
    expect(json(dfs(['ls', '--json'])).files).toContainEqual(
      expect.objectContaining({ name: 'fileB.txt', state: 'different', lock: { server1: expect.objectContaining({ holder: 'local', held: expect.any(Number) }) } }),
    );
  }, 30_000);

  it('unlock 1 applies the held update; both stores then hold it', async () => {
    const r = dfs(['unlock', '1', '--json']);
    expect(r.status).toBe(0);
    expect(json(r)).toMatchObject({ key: 'fileB.txt', store: 'server1', done: true, holder: 'local', forced: false });
    expect((json(r) as { total: number }).total).toBeGreaterThanOrEqual(1);
    expect(locks()).toEqual([]);
    await waitFor(async () => (await objectText('server1', 'fileB.txt')) === HELD, 10_000);
    expect(await objectText('server2', 'fileB.txt')).toBe(HELD);
    const dir = freshDir();
    expect(dfs(['get', 'fileB.txt', '-o', dir]).status).toBe(0);
    expect(readFileSync(join(dir, 'fileB.txt'), 'utf8')).toBe(HELD);
  }, 30_000);

  it('dfs watch saw it locked, queued, applied and unlocked, in that order', async () => {
    const steps = () => seen.filter((e) => e.key === 'fileB.txt' && ['locked', 'queued', 'applied', 'unlocked'].includes(e.action));
    await waitFor(() => steps().some((e) => e.action === 'unlocked'), 10_000);
    const actions = steps().map((e) => e.action);
    expect(actions[0]).toBe('locked');
    expect(actions.at(-1)).toBe('unlocked');
    expect(actions.indexOf('queued')).toBeGreaterThan(0);
    expect(actions.indexOf('applied')).toBeGreaterThan(actions.indexOf('queued'));
    expect(steps().find((e) => e.action === 'locked')).toMatchObject({ who: 'local', to: ['server1'] });
    expect(steps().find((e) => e.action === 'applied')).toMatchObject({ who: 'local', to: ['server1'], reason: expect.stringMatching(/^held update 1\/\d+$/) });
  }, 20_000);
});

describe('refusals against the local stack, each before anything is written', () => {
  it.each([
    ['a negative index', ['lock', '-1'], 2, 'BadIndex'],
    ['an index that is not a whole number', ['lock', '1.5'], 2, 'BadIndex'],
    ['a hex index', ['unlock', '0x1'], 2, 'BadIndex'],
    ['an index past the end', ['lock', '3'], 2, 'BadIndex'],
    ['a file no store holds', ['lock', 'nosuch.txt'], 3, 'NotFound'],
    ['an unknown store', ['lock', 'fileA.txt', '--at', 'server9'], 2, 'UnknownStore'],
    ['a ttl under a minute', ['lock', 'fileA.txt', '--ttl', '30s'], 2, 'BadTtl'],
    ['a ttl over 7 days', ['lock', 'fileA.txt', '--ttl', '8d'], 2, 'BadTtl'],
    ['an unlock of a file not locked', ['unlock', 'fileA.txt'], 3, 'NotLocked'],
    ['an unlock by an index not locked', ['unlock', '0'], 3, 'NotLocked'],
  ])('%s', (_what, args, status, error) => {
    const r = dfs([...args, '--json']);
    expect([r.status, json(r).error]).toEqual([status, error]);
    expect(locks()).toEqual([]);
  });

  it('the API itself refuses a ttl out of range (400), locking nothing', async () => {
    const res = await fetch(`${stack.apiUrl}/locks/fileA.txt`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ttl: 30 }),
    });
    expect(res.status).toBe(400);
    expect(locks()).toEqual([]);
  });

  it("someone else's lock: lock and unlock exit 7, --force needs -y when piped, then takes it over", () => {
    const created = dfs(['token', 'create', 'bob']);
    expect(created.status).toBe(0);
    const bob = { DFS_TOKEN: created.stdout.trim() };
    expect(dfs(['lock', 'fileA.txt'], bob).status).toBe(0);

    const lock = dfs(['lock', 'fileA.txt', '--json']);
    expect(lock.status).toBe(7);
    expect(json(lock)).toMatchObject({ error: 'LockHeld', holder: 'bob' });
    const unlock = dfs(['unlock', 'fileA.txt']);
    expect(unlock.status).toBe(7);
    expect(unlock.stderr).toMatch(/^dfs: fileA\.txt is locked at server1 by bob since .*; --force takes the lock over and unlocks it\n$/);
    expect(dfs(['unlock', 'fileA.txt', '--force']).status).toBe(2);
    expect(locks()).toEqual([expect.objectContaining({ key: 'fileA.txt', holder: 'bob' })]);

    const forced = dfs(['unlock', 'fileA.txt', '--force', '-y']);
    expect(forced.status).toBe(0);
    expect(forced.stdout).toBe("unlocked fileA.txt at server1, bob's lock taken over: no held updates\n");
    expect(locks()).toEqual([]);
  }, 60_000);
});
