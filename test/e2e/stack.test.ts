import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { createS3Client } from '../../lib/config';
import { startLocalStack, type LocalStack } from '../../scripts/stack';

jest.setTimeout(120_000);

const dataDir = mkdtempSync(join(tmpdir(), 'dfs-stack-'));
let stack: LocalStack | undefined;

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function getJson(path: string): Promise<{ status: number; type: string | null; body: any }> {
  const res = await fetch(`${stack!.apiUrl}${path}`, { headers: { authorization: `Bearer ${stack!.token}` } });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
}

/** Processes started by this stack: everything it spawns inherits DFS_DATA_DIR=<our temp dir>. */
function stackProcesses(): number[] {
  const mark = `DFS_DATA_DIR=${dataDir}\0`;
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'latin1').includes(mark);
      } catch {
        return false; // gone, or not ours to read
      }
    })
    .map(Number);
}

function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

async function stopAndCheckGone(s: LocalStack): Promise<void> {
  await s.stop();
  expect(stackProcesses()).toEqual([]);
  for (const url of [s.apiUrl, s.s3Endpoint, s.lambdaEndpoint]) expect(await refused(url)).toBe(true);
}

describe('startLocalStack', () => {
  it('seeds empty stores and serves the four classic cases on free ports', async () => {
    stack = await startLocalStack({ dataDir, quiet: true });
    expect(stack.seeded).toBe(true);
    expect(stack.stores.map((s) => s.name)).toEqual(['server1', 'server2']);
    expect(stack.functionName).toBe('s3-dfs-local-api');
    const ports = [stack.apiUrl, stack.s3Endpoint, stack.lambdaEndpoint].map((u) => new URL(u).port);
    expect(new Set(ports).size).toBe(3);
    expect(ports).not.toContain('3000');

    const a = await getJson('/files/fileA.txt?meta=1');
    expect(a.status).toBe(200);
    expect(a.type).toMatch(/^application\/json/);
    expect(a.body).toMatchObject({ status: 'SINGLE', key: 'fileA.txt', unavailable: [] });
    expect(a.body.copies.map((c: { store: string }) => c.store).sort()).toEqual(['server1', 'server2']);
    expect(a.body.content).toBeUndefined();

    const b = await getJson('/files/fileB.txt?meta=1');
    expect(b.body.status).toBe('DIFFERENT');
    const newest = b.body.versions.find((v: { newest: boolean }) => v.newest);
    expect(newest.stores).toEqual(['server2']);

    expect((await getJson('/files/fileC.txt?meta=1')).body).toMatchObject({ status: 'SINGLE', copies: [{ store: 'server2' }] });
    const none = await getJson('/files/nosuch.txt?meta=1');
    expect(none.status).toBe(404);
    expect(none.body).toEqual({ status: 'NOT_FOUND', key: 'nosuch.txt', unavailable: [] });

    const withBody = await getJson('/files/fileA.txt');
    expect(Buffer.from(withBody.body.content.base64, 'base64').toString()).toBe('This is the original version of file A.');
  });

  it('answers the Lambda Invoke API under the full function name', async () => {
    const lambda = new LambdaClient({
      endpoint: stack!.lambdaEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const out = await lambda.send(
        new InvokeCommand({
          FunctionName: stack!.functionName,
          Payload: Buffer.from(JSON.stringify({ method: 'GET', path: '/files/fileC.txt', query: { meta: '1' } })),
        }),
      );
      const result = JSON.parse(Buffer.from(out.Payload!).toString());
      expect(result).toMatchObject({ statusCode: 200, body: { status: 'SINGLE', key: 'fileC.txt' } });
    } finally {
      lambda.destroy();
    }
  });

  // scripts/s3rver-like-s3.ts, put into sls's own s3rver by infra/s3rver-like-s3.js.
  it("keeps S3's promises on its own S3: conditional writes and deletes, and a key it cannot store refused without going down", async () => {
    const s3 = createS3Client({ endpoint: stack!.s3Endpoint });
    const bucket = stack!.stores[0]!.bucket;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const outcome = (command: any) =>
      s3.send(command).then(
        () => ({ status: 200 }),
        (e: { name: string; $metadata?: { httpStatusCode?: number } }) => ({ status: e.$metadata?.httpStatusCode, code: e.name }),
      );
    const seed = async () => (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'fileA.txt' }))).Body!.transformToString();
    try {
      const before = await seed();
      expect(await outcome(new PutObjectCommand({ Bucket: bucket, Key: 'fileA.txt', Body: 'overwritten', IfNoneMatch: '*' }))).toEqual({
        status: 412,
        code: 'PreconditionFailed',
      });
      expect(await outcome(new DeleteObjectCommand({ Bucket: bucket, Key: 'fileA.txt', IfMatch: '"0123456789abcdef0123456789abcdef"' }))).toEqual({
        status: 412,
        code: 'PreconditionFailed',
      });
      expect(await seed()).toBe(before);
      expect(before).toBe('This is the original version of file A.');

      expect(await outcome(new PutObjectCommand({ Bucket: bucket, Key: `docs/${'x'.repeat(300)}.txt`, Body: 'x' }))).toEqual({
        status: 400,
        code: 'KeyTooLongError',
      });
      const files = await fetch(`${stack!.apiUrl}/files`, { headers: { authorization: `Bearer ${stack!.token}` } });
      expect(files.status).toBe(200);
      expect(await seed()).toBe(before);
    } finally {
      s3.destroy();
    }
  });

  it('keeps the data across a restart and does not seed again', async () => {
    const s3 = createS3Client({ endpoint: stack!.s3Endpoint });
    try {
      await s3.send(
        new PutObjectCommand({ Bucket: stack!.stores[0]!.bucket, Key: 'kept.txt', Body: 'still here', Metadata: { mtime: String(Date.now()) } }),
      );
    } finally {
      s3.destroy();
    }
    await stopAndCheckGone(stack!);

    stack = await startLocalStack({ dataDir, quiet: true });
    expect(stack.seeded).toBe(false);
    const kept = await getJson('/files/kept.txt?meta=1');
    expect(kept.status).toBe(200);
    expect(JSON.stringify(kept.body)).toContain('server1');
    expect((await getJson('/files/fileB.txt?meta=1')).body.status).toBe('DIFFERENT');
  });

  it('with reset wipes the data and loads the seed again', async () => {
    await stopAndCheckGone(stack!);

    stack = await startLocalStack({ dataDir, quiet: true, reset: true });
    expect(stack.seeded).toBe(true);
    expect((await getJson('/files/kept.txt?meta=1')).status).toBe(404);
    expect((await getJson('/files/fileA.txt?meta=1')).body.status).toBe('SINGLE');
  });

  it('stop() leaves no process and no listening port behind, and may be called twice', async () => {
    const s = stack!;
    expect(stackProcesses().length).toBeGreaterThan(0);
    await stopAndCheckGone(s);
    await s.stop();
    stack = undefined;
  });

  it('reports the output of sls when the stack cannot start, and leaves nothing running', async () => {
    // The API port is taken (by a server that hangs up at once): sls exits, and the error says why.
    const blocker = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const err = await startLocalStack({ dataDir, quiet: true, httpPort: port }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/did not start[\s\S]*sls output[\s\S]*EADDRINUSE/);
      // Named as taken, and not started again: the caller chose that port.
      expect(err).toMatchObject({ port });
      expect(stackProcesses()).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
