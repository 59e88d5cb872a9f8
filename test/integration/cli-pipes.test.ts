/**
 * Issue 12, pipes: the real `dfs` against the real API handler and s3rver. `dfs put -` streams
 * stdin through the multipart flow with its size unknown, `dfs cat` and `dfs get -o -` write a
 * file to stdout; both byte-exact on 20 MiB. `dfs stat` is the ?meta=1 answer per store.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Deps } from '../../lib/deps';
import { handler } from '../../handlers/api';
import { runBytes, startBytes, testBytes, useCliStack } from '../helpers/cli-stack';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

// A loaded 2-core machine: a 20 MiB round trip through s3rver takes a few seconds.
jest.setTimeout(60_000);

const stack = useCliStack(() => handler, (d) => (mockDeps = d));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const BIG = testBytes(20 * 1024 * 1024 + 12_345);

async function stored(bucket: string, key: string): Promise<Buffer> {
  const res = await stack().s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

async function seed(bucket: string, key: string, body: string | Buffer, mtime = '1700000000') {
  await stack().s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, Metadata: { mtime } }));
}

describe('dfs put - (stdin)', () => {
  it('streams 20 MiB of stdin through the multipart flow to both stores, byte for byte', async () => {
    const r = await runBytes(['put', '-', '--as', 'pipes/big.bin', '--json'], { env: stack().env(), stdin: BIG });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const answer = JSON.parse(r.stdout.toString());
    expect(answer).toMatchObject({ key: 'pipes/big.bin', size: BIG.length, file: '-', via: 'multipart', multipart: { parts: 3, partSize: 8 * 1024 * 1024 } });
    for (const bucket of ['server1', 'server2']) expect(sha(await stored(bucket, 'pipes/big.bin'))).toBe(sha(BIG));
  });

  it('sends a short stdin in one request', async () => {
    const r = await runBytes(['put', '-', '--as', 'pipes/short.txt', '--json'], { env: stack().env(), stdin: Buffer.from('hello\n') });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ size: 6, via: 'inline' });
    expect((await stored('server2', 'pipes/short.txt')).toString()).toBe('hello\n');
  });

  it('needs --as (exit 2, nothing read or sent)', async () => {
    stack().api.clear();
    const r = await runBytes(['put', '-'], { env: stack().env(), stdin: Buffer.from('x') });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('dfs: dfs put - reads stdin, which has no name: add --as NAME\n');
    expect(stack().api.requests).toEqual([]);
  });
});

describe('dfs cat and dfs get -o -', () => {
  beforeAll(async () => {
    for (const bucket of ['server1', 'server2']) await seed(bucket, 'pipes/cat.bin', BIG);
    await seed('server1', 'pipes/b.txt', 'version 1', '1700000000');
    await seed('server2', 'pipes/b.txt', 'version two', '1700000100');
  });

  it.each([
    ['dfs cat NAME', ['cat', 'pipes/cat.bin']],
    ['dfs get NAME -o -', ['get', 'pipes/cat.bin', '-o', '-']],
  ])('%s writes 20 MiB to stdout byte for byte (a presigned download), nothing else', async (_what, args) => {
    const r = await runBytes(args, { env: stack().env() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(BIG.length);
    expect(sha(r.stdout)).toBe(sha(BIG));
  });

  it('writes nothing to stdout when the copies differ: exit 4, the versions and --resolve on stderr', async () => {
    const r = await runBytes(['cat', 'pipes/b.txt'], { env: stack().env() });
    expect(r.code).toBe(4);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toMatch(/^dfs: pipes\/b\.txt differs between stores \(2 versions\); nothing written to stdout\n/);
    expect(r.stderr).toContain('dfs: pick one with --resolve newest, or --resolve server1|server2');
  });

  it.each([
    ['newest', 'version two'],
    ['server1', 'version 1'],
  ])('writes the version --resolve %s picks', async (pick, text) => {
    const r = await runBytes(['cat', 'pipes/b.txt', '--resolve', pick], { env: stack().env() });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.toString()).toBe(text);
  });

  it('exits 3 for a name no store holds, writing nothing', async () => {
    const r = await runBytes(['cat', 'pipes/none.txt'], { env: stack().env() });
    expect(r.code).toBe(3);
    expect(r.stdout.length).toBe(0);
    expect(r.stderr).toBe('dfs: pipes/none.txt: not found on any store\n');
  });

  it('stops quietly when the reader goes away (| head -c)', async () => {
    const run = startBytes(['cat', 'pipes/cat.bin'], { env: stack().env() });
    run.child.stdout!.once('data', () => run.child.stdout!.destroy());
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('says how much stdout got when interrupted, exit 130', async () => {
    const run = startBytes(['cat', 'pipes/cat.bin'], { env: stack().env() });
    // Nobody reads stdout: the pipe fills, and Ctrl-C comes while dfs waits for the reader.
    run.child.stdout!.pause();
    await new Promise((resolve) => run.child.stdout!.once('readable', resolve));
    run.child.kill('SIGINT');
    run.child.stdout!.resume();
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^dfs: interrupted after \d+ bytes: stdout got a partial copy\n$/);
  });
});

describe('dfs stat', () => {
  it('prints the ?meta=1 answer, one row per store, without reading content', async () => {
    stack().api.clear();
    const r = await runBytes(['stat', 'pipes/b.txt'], { env: stack().env() });
    expect(r.code).toBe(4);
    const lines = r.stdout.toString().split('\n');
    expect(lines[0]).toBe('pipes/b.txt: DIFFERENT, 2 versions');
    const cells = lines.slice(1, 4).map((l) => l.trim().split(/ {2,}/));
    expect(cells[0]).toEqual(['STORE', 'SIZE', 'MODIFIED', 'ETAG', 'VERSION']);
    expect(cells[1]).toEqual(['server1', '9 B', '2023-11-14 22:13:20Z', expect.stringMatching(/^"?[0-9a-f]{32}"?$/), '1']);
    expect(cells[2]).toEqual(['server2', '11 B', '2023-11-14 22:15:00Z', expect.stringMatching(/^"?[0-9a-f]{32}"?$/), '2 (newest)']);
    // Columns line up: each starts at the same place on every line.
    for (const word of ['MODIFIED', 'ETAG', 'VERSION']) {
      const at = lines[1]!.indexOf(word);
      expect(lines.slice(2, 4).map((l) => l[at - 1] === ' ' && l[at] !== ' ')).toEqual([true, true]);
    }
    expect(stack().api.requests.map((q) => `${q.method} ${q.url}`)).toEqual(['GET /files/pipes/b.txt?meta=1']);
  });

  it('prints the API answer with --json, exit 0 for SINGLE', async () => {
    const r = await runBytes(['stat', 'pipes/cat.bin', '--json'], { env: stack().env() });
    expect(r.code).toBe(0);
    const answer = JSON.parse(r.stdout.toString());
    expect(answer).toMatchObject({ status: 'SINGLE', key: 'pipes/cat.bin', unavailable: [] });
    expect(answer.copies.map((c: { store: string; size: number }) => [c.store, c.size])).toEqual([
      ['server1', BIG.length],
      ['server2', BIG.length],
    ]);
    expect(answer.content).toBeUndefined();
  });
});
