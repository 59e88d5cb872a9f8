import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient, type ReceiveMessageCommandOutput } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { handler } from '../../handlers/api';
import { logger } from '../../handlers/http';
import * as read from '../../lib/read';
import { forgetTokens } from '../../lib/tokens';
import { apiEvent, putTestTokens, testTokenRecords } from '../helpers/apigw';
import { networkError, s3Error, useFakeS3 } from '../helpers/mock-s3';

// handlers/deps.ts builds its deps from the environment at first use: this is the wiring under test.
const ENV = {
  DFS_STORES: 'server1=bucket-1,server2=bucket-2',
  DFS_CONTROL_BUCKET: 'control',
  DFS_INLINE_LIMIT: '1000',
  DFS_FAILURE_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/failures',
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDTEST',
  AWS_SECRET_ACCESS_KEY: 'secret',
};
const saved = Object.fromEntries(Object.keys(ENV).map((k) => [k, process.env[k]]));
beforeAll(() => Object.assign(process.env, ENV));
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const { s3mock, fake } = useFakeS3();
const sqsMock = mockClient(SQSClient);
beforeEach(() => sqsMock.reset());
// Every request through API Gateway carries the write token `tester`, whose record is here.
beforeEach(async () => {
  forgetTokens();
  await putTestTokens((key, text) => fake.put('control', key, text));
});
/** The requests that went to a store's bucket, not the control bucket's token reads. */
const storeCalls = () => s3mock.calls().filter((c) => (c.args[0].input as { Bucket?: string }).Bucket !== 'control');
let logError: jest.SpyInstance;

beforeEach(() => {
  logError = jest.spyOn(logger, 'error').mockImplementation(() => undefined);
  jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
});

afterEach(() => jest.restoreAllMocks());

async function call(method: string, rawPath: string, query?: Record<string, string>) {
  const event = apiEvent(method, rawPath, { query, headers: { accept: 'application/json' } });
  const res = (await handler(event)) as APIGatewayProxyStructuredResultV2 & { body: string };
  return { status: res.statusCode, raw: res.body, body: JSON.parse(res.body) as Record<string, unknown>, headers: res.headers };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** `n` failure records whose notifications hold no record: each replays at once. */
const messages = (n: number, from = 0): ReceiveMessageCommandOutput => ({
  $metadata: {},
  Messages: Array.from({ length: n }, (_, i) => ({ ReceiptHandle: `r${from + i}`, Body: JSON.stringify({ requestPayload: { Records: [] } }) })),
});

describe('api handler: GET /files/{key+} through API Gateway', () => {
  it('decodes the key from rawPath and answers SINGLE as JSON', async () => {
    fake.put('bucket-1', 'a b+c.txt', 'plus and space');
    fake.put('bucket-2', 'a b+c.txt', 'plus and space');
    const res = await call('GET', '/files/a%20b%2Bc.txt');

    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8' });
    expect(res.body).toMatchObject({
      status: 'SINGLE',
      key: 'a b+c.txt',
      copies: [{ store: 'server1', size: 14 }, { store: 'server2', size: 14 }],
      content: { base64: b64('plus and space') },
      unavailable: [],
    });
    expect(s3mock).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: 'bucket-2', Key: 'a b+c.txt' });
  });

  it('keeps "/" in keys and takes "+" literally', async () => {
    fake.put('bucket-2', 'dir/sub/x+y.txt', 'deep');
    const res = await call('GET', '/files/dir/sub/x+y.txt');
    expect(res.body).toMatchObject({ status: 'SINGLE', key: 'dir/sub/x+y.txt', copies: [{ store: 'server2' }] });
  });

  it('answers without content and reads no body with ?meta=1', async () => {
    fake.put('bucket-1', 'fileA.txt', 'This is the original version of file A.');
    fake.put('bucket-2', 'fileA.txt', 'This is the original version of file A.');
    const res = await call('GET', '/files/fileA.txt', { meta: '1' });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'SINGLE', key: 'fileA.txt' });
    expect(res.body).not.toHaveProperty('content');
    expect(storeCalls().filter((c) => c.args[0] instanceof GetObjectCommand)).toEqual([]);
  });

  it('answers DIFFERENT with every version', async () => {
    fake.put('bucket-1', 'fileB.txt', 'This is version 1 of file B.', { mtime: 1000 });
    fake.put('bucket-2', 'fileB.txt', 'This is version 2 of file B, which is more recent.', { mtime: 2000 });
    const res = await call('GET', '/files/fileB.txt');

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'DIFFERENT',
      versions: [
        { stores: ['server1'], newest: false, content: { base64: b64('This is version 1 of file B.') } },
        { stores: ['server2'], newest: true, content: { base64: b64('This is version 2 of file B, which is more recent.') } },
      ],
    });
  });

  it('answers 404 NOT_FOUND when no store holds the key', async () => {
    const res = await call('GET', '/files/nope.txt');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ status: 'NOT_FOUND', key: 'nope.txt', unavailable: [] });
  });

  it('answers 200 with unavailable when one store is down', async () => {
    fake.put('bucket-1', 'f', 'x');
    fake.fail('bucket-2', networkError);
    const res = await call('GET', '/files/f');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'SINGLE', unavailable: ['server2'] });
  });

  it('answers 503 Unavailable naming the stores when none answers', async () => {
    fake.fail('bucket-1', networkError);
    fake.fail('bucket-2', () => s3Error('AccessDenied', 403));
    const res = await call('GET', '/files/f');

    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'Unavailable', message: expect.any(String), unavailable: ['server1', 'server2'] });
  });

  const badPaths: [string, string][] = [
    ['/files/', 'key is empty'],
    ['/files/a/../b', 'key contains a "." or ".." segment'],
    ['/files/a/%2E%2E/b', 'key contains a "." or ".." segment'],
    ['/files/dir/', 'key ends with "/" (that names a folder, not a file)'],
    ['/files//abs', 'key starts with "/"'],
    ['/files/a//b', 'key contains an empty path segment ("//")'],
    ['/files/a%00b', 'key contains a control character'],
    ['/files/a%0Ab', 'key contains a control character'],
    ['/files/a%5Cb', 'key contains a backslash; use "/" to separate folders'],
    [`/files/${'%E2%82%AC'.repeat(342)}`, 'key is 1026 bytes of UTF-8, over the limit of 900'],
  ];
  const shortly = (path: string) => (path.length > 40 ? `${path.slice(0, 25)}… (${path.length} chars)` : path);

  it.each(badPaths.map(([path, message]) => [shortly(path), path, message]))('answers 400 InvalidKey for %s without asking a store', async (_, rawPath, message) => {
    const res = await call('GET', rawPath!);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'InvalidKey', message });
    expect(storeCalls()).toHaveLength(0);
  });

  it.each([['yes'], ['TRUE'], ['2'], ['']])('answers 400 BadRequest for ?meta=%j, reading nothing: a flag is 1, true, 0 or false', async (meta) => {
    fake.put('bucket-1', 'f', 'x');
    const res = await call('GET', '/files/f', { meta });
    expect(res).toMatchObject({ status: 400, body: { error: 'BadRequest', message: 'meta takes 1, true, 0 or false' } });
    expect(storeCalls()).toHaveLength(0);
  });

  it.each([['0'], ['false']])('reads the content with ?meta=%s', async (meta) => {
    fake.put('bucket-1', 'f', 'x');
    const res = await call('GET', '/files/f', { meta });
    expect(res).toMatchObject({ status: 200, body: { content: { base64: b64('x') } } });
  });

  it('answers 400 BadRequest for a path that is not valid percent-encoding', async () => {
    const res = await call('GET', '/files/%FF%FE');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'BadRequest' });
  });

  it.each([
    ['GET', '/nope'],
    ['GET', '/filesx/a'],
    ['PATCH', '/files/a.txt'],
  ])('answers 404 NotFound for the unknown route %s %s', async (method, path) => {
    const res = await call(method, path);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'NoRoute', message: `no route for ${method} ${path}` });
  });

  it('answers a bare 500 Internal for an unexpected error, leaking nothing', async () => {
    const boom = new TypeError('cannot read bucket-1/secret.txt: s3://bucket-1 at readOnce (lib/read.ts:42)');
    jest.spyOn(read, 'readFile').mockRejectedValueOnce(boom);
    const res = await call('GET', '/files/secret.txt');

    expect(res.status).toBe(500);
    expect(res.raw).toBe('{"error":"Internal"}');
    expect(logError).toHaveBeenCalledWith('unhandled error', { error: boom });
  });
});

describe('api handler: direct invocations', () => {
  beforeEach(() => {
    fake.put('bucket-1', 'fileA.txt', 'This is the original version of file A.');
    fake.put('bucket-2', 'fileA.txt', 'This is the original version of file A.');
  });

  it('answers { statusCode, body } with the read answer as an object, needing no token', async () => {
    const res = await handler({ method: 'GET', path: '/files/fileA.txt' });

    expect(res).toEqual({
      statusCode: 200,
      body: expect.objectContaining({ status: 'SINGLE', key: 'fileA.txt', content: { base64: b64('This is the original version of file A.') } }),
    });
    expect(res).not.toHaveProperty('headers');
    expect(s3mock).not.toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'control' });
  });

  it('takes the event as a JSON string too, and ?meta=1 as a query', async () => {
    const res = (await handler('{"method":"GET","path":"/files/fileA.txt","query":{"meta":"1"}}')) as { statusCode: number; body: object };
    expect(res.statusCode).toBe(200);
    expect(res.body).toMatchObject({ status: 'SINGLE' });
    expect(res.body).not.toHaveProperty('content');
    expect(s3mock).not.toHaveReceivedCommand(GetObjectCommand);
  });

  it('takes the key as it is, with no percent-decoding', async () => {
    fake.put('bucket-2', '100%.txt', 'percent');
    await expect(handler({ method: 'GET', path: '/files/100%.txt' })).resolves.toMatchObject({ statusCode: 200, body: { key: '100%.txt' } });
  });

  it('answers 404 with NOT_FOUND for a missing key', async () => {
    await expect(handler({ method: 'GET', path: '/files/nope.txt' })).resolves.toEqual({
      statusCode: 404,
      body: { status: 'NOT_FOUND', key: 'nope.txt', unavailable: [] },
    });
  });

  it('serves every route, not only reads: POST /reconcile/replay replays', async () => {
    sqsMock.on(ReceiveMessageCommand).resolvesOnce(messages(1)).resolves({});
    sqsMock.on(DeleteMessageCommand).resolves({});
    await expect(handler({ method: 'POST', path: '/reconcile/replay' })).resolves.toEqual({ statusCode: 200, body: { replayed: 1, failed: 0 } });
  });

  it.each([
    ['null', null],
    ['a number', 42],
    ['a string that is not JSON', 'get fileA.txt'],
    ['an object without method', {}],
    ['the old {"op":"get"} shape', { op: 'get', key: 'fileA.txt' }],
    ['a method without a path', { method: 'GET' }],
    ['a path without a leading "/"', { method: 'GET', path: 'files/fileA.txt' }],
    ['a query that is not strings', { method: 'GET', path: '/files/fileA.txt', query: { meta: true } }],
  ])('answers 400 BadRequest for %s', async (_, event) => {
    const res = (await handler(event)) as { statusCode: number; body: { error: string; message: string } };
    expect(res.statusCode).toBe(400);
    expect(res.body.error).toBe('BadRequest');
    expect(res.body.message).toEqual(expect.any(String));
    expect(s3mock.calls()).toHaveLength(0);
  });

  it('answers 400 InvalidKey for a bad key, like the HTTP route', async () => {
    await expect(handler({ method: 'GET', path: '/files/../etc/passwd' })).resolves.toEqual({
      statusCode: 400,
      body: { error: 'InvalidKey', message: 'key contains a "." or ".." segment' },
    });
  });

  it('answers 404 NoRoute for a path no route serves', async () => {
    await expect(handler({ method: 'GET', path: '/nope' })).resolves.toEqual({ statusCode: 404, body: { error: 'NoRoute', message: 'no route for GET /nope' } });
  });
});

describe('api handler: POST /reconcile/replay', () => {
  it('replays the failure queue and answers how many it replayed and how many failed again', async () => {
    sqsMock.on(ReceiveMessageCommand).resolvesOnce(messages(2)).resolves({});
    sqsMock.on(DeleteMessageCommand).resolves({});
    const res = await call('POST', '/reconcile/replay');
    expect(res).toMatchObject({ status: 200, body: { replayed: 2, failed: 0 } });
    expect(sqsMock.commandCalls(DeleteMessageCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: ENV.DFS_FAILURE_QUEUE_URL, ReceiptHandle: 'r0' },
      { QueueUrl: ENV.DFS_FAILURE_QUEUE_URL, ReceiptHandle: 'r1' },
    ]);
  });

  describe('within 10 s', () => {
    beforeEach(() => jest.useFakeTimers({ now: Date.UTC(2026, 0, 2), doNotFake: ['nextTick', 'setImmediate'] }));
    afterEach(() => jest.useRealTimers());
    /** A queue that never runs dry, each receive taking `ms`. */
    const slowQueue = (ms: number) => {
      let given = 0;
      sqsMock.on(ReceiveMessageCommand).callsFake(async () => {
        jest.setSystemTime(Date.now() + ms);
        return messages(10, (given += 10) - 10);
      });
      sqsMock.on(DeleteMessageCommand).resolves({});
    };

    it('starts no batch once 10 s are spent', async () => {
      slowQueue(5000);
      expect(await call('POST', '/reconcile/replay')).toMatchObject({ status: 200, body: { replayed: 20, failed: 0 } });
      expect(sqsMock.commandCalls(ReceiveMessageCommand)).toHaveLength(2);
    });

    it('starts one more while a millisecond of them is left', async () => {
      slowQueue(4999);
      expect(await call('POST', '/reconcile/replay')).toMatchObject({ status: 200, body: { replayed: 30, failed: 0 } });
      expect(sqsMock.commandCalls(ReceiveMessageCommand)).toHaveLength(3);
    });
  });

  it('answers 503 Unavailable when the queue does not answer, removing nothing', async () => {
    sqsMock.on(ReceiveMessageCommand).rejects(networkError());
    const res = await call('POST', '/reconcile/replay');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.raw)).toMatchObject({ error: 'Unavailable', message: expect.stringMatching(/queue of failed replication events did not answer/) });
    expect(sqsMock).not.toHaveReceivedCommand(DeleteMessageCommand);
  });

  it('answers nothing replayed without a failure queue (the local stack)', async () => {
    const url = process.env.DFS_FAILURE_QUEUE_URL;
    delete process.env.DFS_FAILURE_QUEUE_URL;
    try {
      await jest.isolateModulesAsync(async () => {
        // The fresh modules have an S3Client (and commands) of their own: it answers the token reads.
        const { S3Client: FreshS3Client } = await import('@aws-sdk/client-s3');
        const records = testTokenRecords();
        mockClient(FreshS3Client).callsFake(async (input: { Bucket?: string; Key?: string }) => {
          const text = input.Bucket === 'control' ? records[input.Key ?? ''] : undefined;
          if (text === undefined) throw s3Error('NoSuchKey', 404);
          return { ETag: '"t"', Body: { transformToString: async () => text } };
        });
        const { handler: fresh } = await import('../../handlers/api');
        const res = (await fresh(apiEvent('POST', '/reconcile/replay', { headers: { accept: 'application/json' } }))) as APIGatewayProxyStructuredResultV2 & { body: string };
        expect([res.statusCode, JSON.parse(res.body)]).toEqual([200, { replayed: 0, failed: 0 }]);
      });
    } finally {
      process.env.DFS_FAILURE_QUEUE_URL = url;
    }
    expect(sqsMock.calls()).toHaveLength(0);
  });

  it('answers 404 NoRoute for GET /reconcile/replay', async () => {
    expect(await call('GET', '/reconcile/replay')).toMatchObject({ status: 404, body: { error: 'NoRoute' } });
  });
});
