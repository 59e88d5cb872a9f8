import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { startLocalStack, type LocalStack } from '../../scripts/stack';
import { createS3Client } from '../../lib/config';

/*
 * The whole product through its front door: sls offline with the real handlers and the real
 * `dfs` binary as a user runs it. One stack for the file; the steps build on each other
 * (the seed first, then sync, then writes), so they run in order.
 */
const DFS = resolve(__dirname, '../../bin/dfs.js');
const dataDir = mkdtempSync(join(tmpdir(), 'dfs-e2e-'));
let stack: LocalStack;
let s3: S3Client;

beforeAll(async () => {
  stack = await startLocalStack({ dataDir, quiet: true });
  s3 = createS3Client({ endpoint: stack.s3Endpoint });
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function dfs(args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [DFS, ...args], {
    cwd: opts.cwd,
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, DFS_ENDPOINT: stack.apiUrl, DFS_LAMBDA_ENDPOINT: stack.lambdaEndpoint, DFS_DATA_DIR: stack.dataDir, ...opts.env },
  });
}

const freshDir = () => mkdtempSync(join(tmpdir(), 'dfs-out-'));
const bucket = (store: string) => stack.stores.find((s) => s.name === store)!.bucket;

async function objectText(store: string, key: string): Promise<string | undefined> {
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket(store), Key: key }));
    return await res.Body!.transformToString();
  } catch {
    return undefined;
  }
}

/** Polls `probe` until it returns true or `ms` pass: a condition, not a sleep. */
async function waitFor(probe: () => Promise<boolean>, ms: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await probe()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`condition not met within ${ms} ms`);
}

describe('dfs against the local stack', () => {
  it('gets the four classic cases with the right exit codes and files', () => {
    const dir = freshDir();
    const a = dfs(['get', 'fileA.txt', '-o', dir]);
    expect(a.status).toBe(0);
    expect(readFileSync(join(dir, 'fileA.txt'), 'utf8')).toBe('This is the original version of file A.');

    const b = dfs(['get', 'fileB.txt', '-o', dir]);
    expect(b.status).toBe(4);
    expect(readFileSync(join(dir, 'fileB.server1.txt'), 'utf8')).toBe('This is version 1 of file B.');
    expect(readFileSync(join(dir, 'fileB.server2.txt'), 'utf8')).toBe('This is version 2 of file B, which is more recent.');
    expect(b.stdout + b.stderr).toMatch(/fileB\.server2\.txt.*newest/);

    const c = dfs(['get', 'fileC.txt', '-o', dir]);
    expect(c.status).toBe(0);
    expect(readFileSync(join(dir, 'fileC.txt'), 'utf8')).toBe('This file only exists on SERVER 2.');

    const none = dfs(['get', 'nosuch.txt', '-o', dir]);
    expect(none.status).toBe(3);
    expect(readdirSync(dir).sort()).toEqual(['fileA.txt', 'fileB.server1.txt', 'fileB.server2.txt', 'fileC.txt']);
  });

  it('gets through the Lambda Invoke API with --via lambda', () => {
    const dir = freshDir();
    const r = dfs(['get', 'fileB.txt', '-o', dir, '--via', 'lambda', '--resolve', 'newest', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'DIFFERENT', key: 'fileB.txt' });
    expect(readFileSync(join(dir, 'fileB.txt'), 'utf8')).toBe('This is version 2 of file B, which is more recent.');
  });

  const badKeys = [
    'a/', 'a//b', '../x', 'a/../b', './a', 'a/.', '.', '..', 'a\u0001b', 'tab\there', 'new\nline', 'del\u007f',
    'c1\u009b', 'back\\slash', 'x'.repeat(1025), '€'.repeat(342),
  ];

  // A path that is exactly `.` or `..` is resolved by every HTTP stack before routing; those two
  // are only refused by the CLI and by direct invocations.
  const apiBadKeys = [...badKeys.filter((k) => k !== '.' && k !== '..'), '/lead'];

  it(`refuses ${apiBadKeys.length} bad keys through the API with 400 InvalidKey`, async () => {
    for (const key of apiBadKeys) {
      // Every character escaped, dots too, so no client or router normalises `..` away first.
      const res = await fetch(`${stack.apiUrl}/files/${encodeURIComponent(key).replace(/\./g, '%2E')}`, { headers: { authorization: `Bearer ${stack.token}` } });
      const body = (await res.json()) as { error: string; message: string };
      expect([key, res.status, body.error]).toEqual([key, 400, 'InvalidKey']);
      expect(body.message.length).toBeGreaterThan(5);
    }
  });

  it(`refuses the same bad keys in the CLI: exit 2, a reason, nothing written`, () => {
    const dir = freshDir();
    // "a/" is no bad key to the CLI: a final "/" asks for every file under that prefix (issue 12).
    for (const key of badKeys.filter((k) => k !== 'a/')) {
      const r = dfs(['get', key, '-o', dir]);
      expect([key, r.status]).toEqual([key, 2]);
      expect(r.stderr).toMatch(/key|name/i);
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('lists the seed: fileA same, fileB different, fileC partial, indexed 0..2', () => {
    const r = dfs(['ls', '--json']);
    expect(r.status).toBe(0);
    const files = JSON.parse(r.stdout).files as { index: number; name: string; state: string; stores: Record<string, unknown> }[];
    expect(files.map((f) => [f.index, f.name, f.state])).toEqual([
      [0, 'fileA.txt', 'same'],
      [1, 'fileB.txt', 'different'],
      [2, 'fileC.txt', 'partial'],
    ]);
    expect(files[2]!.stores.server1).toBeNull();
  });

  it('sync --dry-run reports fileB and fileC; sync fixes both; fileB is then SINGLE with server2 text', async () => {
    const dry = dfs(['sync', '--dry-run', '--json']);
    expect(dry.status).toBe(4);
    const plan = JSON.parse(dry.stdout) as { entries: { key: string; action: string; from: string; to: string[] }[] };
    expect(plan.entries.map((e) => [e.key, e.action, e.from, e.to])).toEqual([
      ['fileB.txt', 'copy', 'server2', ['server1']],
      ['fileC.txt', 'copy', 'server2', ['server1']],
    ]);
    expect(await objectText('server1', 'fileC.txt')).toBeUndefined(); // a dry run changes nothing

    expect(dfs(['sync']).status).toBe(0);
    const dir = freshDir();
    expect(dfs(['get', 'fileB.txt', '-o', dir]).status).toBe(0);
    expect(readFileSync(join(dir, 'fileB.txt'), 'utf8')).toBe('This is version 2 of file B, which is more recent.');
    expect(dfs(['sync', '--dry-run']).status).toBe(0);
  });

  it('round-trips put, ls, get and rm', () => {
    const dir = freshDir();
    const src = join(dir, 'notes v1+.txt');
    writeFileSync(src, 'round trip ✓');
    expect(dfs(['put', src, '--as', 'docs/notes v1+.txt']).status).toBe(0);
    const ls = JSON.parse(dfs(['ls', 'docs/', '--json']).stdout).files as { name: string; state: string }[];
    expect(ls).toEqual([expect.objectContaining({ name: 'docs/notes v1+.txt', state: 'same' })]);

    const out = freshDir();
    expect(dfs(['get', 'docs/notes v1+.txt', '-o', out]).status).toBe(0);
    expect(readFileSync(join(out, 'docs', 'notes v1+.txt'), 'utf8')).toBe('round trip ✓');

    expect(dfs(['rm', 'docs/notes v1+.txt']).status).toBe(2); // piped, no -y: refuses
    expect(dfs(['rm', 'docs/notes v1+.txt', '-y']).status).toBe(0);
    expect(dfs(['get', 'docs/notes v1+.txt', '-o', freshDir()]).status).toBe(3);
  });

  it('uploads 64 MiB through presigned multipart to every store, byte for byte', async () => {
    const dir = freshDir();
    const src = join(dir, 'big.bin');
    const hash = createHash('sha256');
    const out = createWriteStream(src);
    for (let i = 0; i < 64; i++) {
      const chunk = randomBytes(1024 * 1024);
      hash.update(chunk);
      out.write(chunk);
    }
    await new Promise((r) => out.end(r));
    const want = hash.digest('hex');

    const put = dfs(['put', src, '--to', 'all', '--json']);
    expect(put.status).toBe(0);
    expect(JSON.parse(put.stdout).results.map((r: { store: string; ok: boolean }) => [r.store, r.ok])).toEqual([
      ['server1', true],
      ['server2', true],
    ]);
    for (const store of ['server1', 'server2']) {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket(store), Key: 'big.bin' }));
      expect(createHash('sha256').update(await res.Body!.transformToByteArray()).digest('hex')).toBe(want);
    }
    const got = freshDir();
    expect(dfs(['get', 'big.bin', '-o', got]).status).toBe(0);
    expect(createHash('sha256').update(readFileSync(join(got, 'big.bin'))).digest('hex')).toBe(want);
  }, 120_000);

  it('replicates a write and a delete made straight into server1 within 5 s, and dfs watch shows both', async () => {
    const key = `live/${Date.now()}.txt`;
    const watch = spawn(process.execPath, [DFS, 'watch', '--json'], { env: { ...process.env, DFS_ENDPOINT: stack.apiUrl, DFS_TOKEN: stack.token } });
    const seen: { action: string; key: string; from?: string; to?: string[] }[] = [];
    let buffered = '';
    watch.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) if (l.trim()) seen.push(JSON.parse(l));
    });
    try {
      await s3.send(new PutObjectCommand({ Bucket: bucket('server1'), Key: key, Body: 'live' }));
      await waitFor(async () => (await objectText('server2', key)) === 'live', 5000);

      await s3.send(new DeleteObjectCommand({ Bucket: bucket('server1'), Key: key }));
      await waitFor(async () => (await objectText('server2', key)) === undefined, 5000);

      await waitFor(async () => seen.some((e) => e.key === key && e.action === 'delete' && e.to?.includes('server2')), 5000);
      // Written straight into the bucket: its event stamps it (adopt), then copies it; the delete
      // on server1 is seen (deleted), then carried out on server2 (delete). Under load the event
      // of the stamping copy can come after the user's delete and fill server1 from server2 for
      // a moment, before the delete's settle removes both: more entries, never another outcome.
      const entries = seen.filter((e) => e.key === key).map((e) => JSON.stringify([e.action, e.from, e.to]));
      const expected = [
        ['adopt', 'server1', undefined],
        ['replicate', 'server1', ['server2']],
        ['deleted', 'server1', undefined],
        ['delete', undefined, ['server2']],
      ].map((e) => JSON.stringify(e));
      const positions = expected.map((e) => entries.indexOf(e));
      expect(positions.every((p) => p >= 0)).toBe(true);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      await waitFor(async () => (await objectText('server1', key)) === undefined && (await objectText('server2', key)) === undefined, 5000);
    } finally {
      watch.kill();
    }
  }, 30_000);
});
