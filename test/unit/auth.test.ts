/**
 * Who may do what (DESIGN.md), route by route: every route of handlers/api.ts refuses a request
 * without a live token of its scope before it does anything, writes nothing when it refuses,
 * and never shows or logs the token. Direct invokes are the operator's (IAM gates them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { handler } from '../../handlers/api';
import { logger } from '../../handlers/http';
import { forgetTokens } from '../../lib/tokens';
import { forgetSecrets } from '../../lib/secrets';
import type { Deps } from '../../lib/deps';
import type { FailureQueue } from '../../lib/failures';
import { tombstoneKey, type Tombstone } from '../../lib/tombstones';
import { lockRecordKey } from '../../lib/locks';
import { testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError } from '../helpers/mock-s3';
import { makeDeps } from '../helpers/deps';
import { AUTH, READ_AUTH, READ_TOKEN, TEST_TOKEN, apiEvent, putTestTokens, tokenRecord } from '../helpers/apigw';

let mockDeps: Deps;
jest.mock('../../handlers/deps', () => ({ getDeps: () => mockDeps }));

const MiB = 1024 * 1024;
const client = testClient();
const { s3mock, fake } = useConditionalS3(client);
const failures = { receive: jest.fn<ReturnType<FailureQueue['receive']>, Parameters<FailureQueue['receive']>>(), remove: jest.fn<Promise<void>, [string]>() };

/** A token that worked, then was revoked through the API. */
const REVOKED_TOKEN = `dfs_gone_${'G'.repeat(43)}`;
/** The right name with a wrong secret, and a name no token has. */
const WRONG_TOKEN = `dfs_tester_${'W'.repeat(43)}`;
const UNKNOWN_TOKEN = `dfs_nobody_${'A'.repeat(43)}`;
const secretOf = (token: string) => token.slice(token.lastIndexOf('_') + 1);
const ALL_TOKENS = [TEST_TOKEN, READ_TOKEN, REVOKED_TOKEN, WRONG_TOKEN, UNKNOWN_TOKEN];
const HOUR = 3_600_000;

/** Every line the process wrote to stdout or stderr (the Powertools logger's JSON lines among them). */
let output: string[];
let logCalls: jest.SpyInstance[];

beforeEach(async () => {
  forgetTokens();
  failures.receive.mockReset().mockResolvedValue([]);
  failures.remove.mockReset().mockResolvedValue(undefined);
  // No cursorSecret, as deployed: the stack makes its own on first use (lib/secrets.ts).
  const { cursorSecret: _, ...deps } = makeDeps(
    [1, 2].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client })),
    { control: { bucket: 'control', s3: client }, flavor: 'aws', failures },
  );
  mockDeps = deps;
  forgetSecrets();
  await putTestTokens((key, text) => fake.put('control', key, text));
  // What ConditionalS3 does not answer itself: the multipart calls.
  s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
  s3mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"m-1"' });
  // a.txt on both stores, b.txt on server1 only: a dry run has something to plan.
  const made = Date.now() - HOUR;
  for (const b of ['bucket-1', 'bucket-2']) fake.stamped(b, 'a.txt', 'same bytes', { mtime: made, id: 'w-a' });
  fake.stamped('bucket-1', 'b.txt', 'only here', { mtime: made, id: 'w-b' });

  output = [];
  // Kept, not shown: the 500s below log whole errors.
  for (const stream of [process.stdout, process.stderr]) {
    jest.spyOn(stream, 'write').mockImplementation(((chunk: unknown) => {
      output.push(String(chunk));
      return true;
    }) as typeof stream.write);
  }
  // The logger's own calls, arguments included, in case a line were formatted away.
  logCalls = (['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const).map((level) => jest.spyOn(logger, level));
});

afterEach(() => jest.restoreAllMocks());

type Res = APIGatewayProxyStructuredResultV2 & { body: string; headers: Record<string, string> };

async function send(event: unknown) {
  const res = (await handler(event)) as Res;
  return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown>, raw: res };
}

/** Nothing in the answer, the output or the logger's calls holds a token or its secret. */
function expectNoTokenShown(...answers: unknown[]) {
  const logged = logCalls.flatMap((spy) => spy.mock.calls.map((args) => inspect(args, { depth: null, showHidden: true })));
  const seen = [...answers.map((a) => JSON.stringify(a)), ...output, ...logged].join('\n');
  for (const token of ALL_TOKENS) {
    expect(seen).not.toContain(token);
    expect(seen).not.toContain(secretOf(token));
  }
}

/** The requests S3 received were token reads only: nothing listed, headed or written. */
function expectOnlyTokenReads() {
  for (const call of s3mock.calls()) {
    const input = call.args[0].input as { Bucket?: string; Key?: string };
    expect({ command: call.args[0].constructor.name, ...input }).toEqual({ command: 'GetObjectCommand', Bucket: 'control', Key: expect.stringMatching(/^tokens\//) });
  }
  expect(fake.writes).toEqual([]);
  expect(failures.receive).not.toHaveBeenCalled();
}

interface Route {
  /** As handlers/api.ts names it. */
  route: string;
  scope: 'read' | 'write';
  method: string;
  rawPath: string;
  query?: Record<string, string>;
  body?: unknown;
  /** What the route needs to act on, put in place before the request (no request is recorded). */
  setup?: () => void;
}

/** a.txt locked at server1 by the write token's name, for DELETE /locks to release. */
const lockedByTester = () =>
  fake.put('control', lockRecordKey('a.txt'), JSON.stringify({
    key: 'a.txt',
    locks: { server1: { key: 'a.txt', store: 'server1', holder: 'tester', since: new Date().toISOString(), expires: Date.now() + HOUR, next: 1, applied: 0 } },
  }));

/** Every route of handlers/api.ts, each with a request it would act on. */
const ROUTES: Route[] = [
  { route: 'GET /files/{key}', scope: 'read', method: 'GET', rawPath: '/files/a.txt' },
  { route: 'PUT /files/{key}', scope: 'write', method: 'PUT', rawPath: '/files/a.txt', body: 'new bytes' },
  { route: 'DELETE /files/{key}', scope: 'write', method: 'DELETE', rawPath: '/files/a.txt' },
  { route: 'GET /files', scope: 'read', method: 'GET', rawPath: '/files' },
  { route: 'POST /uploads', scope: 'write', method: 'POST', rawPath: '/uploads', body: { key: 'big.bin', size: 20 * MiB } },
  { route: 'POST /uploads/sign', scope: 'write', method: 'POST', rawPath: '/uploads/sign', body: { key: 'big.bin', uploads: [{ store: 'server1', uploadId: 'u1' }], parts: [1] } },
  {
    route: 'POST /uploads/complete', scope: 'write', method: 'POST', rawPath: '/uploads/complete',
    body: { key: 'big.bin', uploads: [{ store: 'server1', uploadId: 'u1', parts: [{ n: 1, etag: '"e1"' }] }] },
  },
  { route: 'POST /uploads/abort', scope: 'write', method: 'POST', rawPath: '/uploads/abort', body: { key: 'big.bin', uploads: [{ store: 'server1', uploadId: 'u1' }] } },
  { route: 'POST /reconcile', scope: 'write', method: 'POST', rawPath: '/reconcile' },
  { route: 'POST /reconcile?dryRun=1', scope: 'read', method: 'POST', rawPath: '/reconcile', query: { dryRun: '1' } },
  { route: 'POST /reconcile/replay', scope: 'write', method: 'POST', rawPath: '/reconcile/replay' },
  { route: 'POST /reconcile/apply', scope: 'write', method: 'POST', rawPath: '/reconcile/apply', body: { entries: [{ key: 'b.txt' }] } },
  { route: 'GET /events', scope: 'read', method: 'GET', rawPath: '/events' },
  { route: 'GET /tokens', scope: 'write', method: 'GET', rawPath: '/tokens' },
  { route: 'POST /tokens', scope: 'write', method: 'POST', rawPath: '/tokens', body: { name: 'new-one', scope: 'read' } },
  { route: 'DELETE /tokens/{name}', scope: 'write', method: 'DELETE', rawPath: '/tokens/reader' },
  { route: 'GET /locks', scope: 'read', method: 'GET', rawPath: '/locks' },
  { route: 'POST /locks/{key}', scope: 'write', method: 'POST', rawPath: '/locks/a.txt', query: { store: 'server1' }, body: { reason: 'editing' } },
  { route: 'DELETE /locks/{key}', scope: 'write', method: 'DELETE', rawPath: '/locks/a.txt', query: { store: 'server1' }, setup: lockedByTester },
];
const READ_ROUTES = ROUTES.filter((r) => r.scope === 'read');
const WRITE_ROUTES = ROUTES.filter((r) => r.scope === 'write');
const named = (routes: Route[]) => routes.map((r) => [r.route, r] as const);

const eventFor = (r: Route, auth: string | null) =>
  apiEvent(r.method, r.rawPath, {
    auth,
    ...(r.query ? { query: r.query } : {}),
    ...(r.body !== undefined ? { body: typeof r.body === 'string' ? r.body : JSON.stringify(r.body) } : {}),
  });

describe('the checks themselves', () => {
  it('see a token the logger writes, in a line or in its arguments', () => {
    logger.warn('oops', { header: AUTH });
    expect(output.join('')).toContain(TEST_TOKEN);
    expect(() => expectNoTokenShown()).toThrow();
  });
});

describe('the routes under test', () => {
  it('are every route handlers/api.ts serves', () => {
    const source = readFileSync(join(__dirname, '../../handlers/api.ts'), 'utf8');
    // A table ends at the first `};` that starts a line (a route's own body may hold `{};`).
    const body = (name: string) => source.slice(source.indexOf(`const ${name}`), source.indexOf('\n};', source.indexOf(`const ${name}`)));
    const exact = [...body('exactRoutes').matchAll(/'([A-Z]+ \/[^']*)': route\(/g)].map((m) => m[1]!);
    const files = [...body('fileRoutes').matchAll(/^ {2}([A-Z]+): route\(/gm)].map((m) => `${m[1]} /files/{key}`);
    const tokens = [...source.matchAll(/req\.method === '([A-Z]+)' && req\.path\.startsWith\(TOKENS\)/g)].map((m) => `${m[1]} /tokens/{name}`);
    const locks = [...body('lockRoutes').matchAll(/^ {2}([A-Z]+): route\(/gm)].map((m) => `${m[1]} /locks/{key}`);
    const served = [...files, ...exact, ...tokens, ...locks];
    expect(served.length).toBeGreaterThanOrEqual(18);
    // POST /reconcile is there twice: applying (write) and its dry run (read).
    expect(new Set(ROUTES.map((r) => r.route.replace(/\?.*/, '')))).toEqual(new Set(served));
    expect(ROUTES.filter((r) => r.route.startsWith('POST /reconcile') && !r.route.includes('/reconcile/')).map((r) => r.scope).sort()).toEqual(['read', 'write']);
  });
});

describe.each(named(ROUTES))('%s', (_, r) => {
  beforeEach(() => r.setup?.());

  async function revokedToken() {
    fake.put('control', 'tokens/gone', tokenRecord(REVOKED_TOKEN, 'write'));
    expect((await send(apiEvent('GET', '/events', { auth: `Bearer ${REVOKED_TOKEN}` }))).status).toBe(200);
    expect((await send(apiEvent('DELETE', '/tokens/gone'))).status).toBe(200);
    s3mock.resetHistory();
    fake.writes.length = 0;
  }

  it.each([
    ['no token', null],
    ['a wrong secret', `Bearer ${WRONG_TOKEN}`],
    ['a token of no one', `Bearer ${UNKNOWN_TOKEN}`],
    ['a revoked token', `Bearer ${REVOKED_TOKEN}`],
  ])('answers 401 Unauthorized to %s, writing nothing and showing no token', async (what, auth) => {
    if (what === 'a revoked token') await revokedToken();
    const res = await send(eventFor(r, auth));
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: 'Unauthorized', message: expect.any(String) });
    expect(res.raw.headers['www-authenticate']).toBe('Bearer');
    expectOnlyTokenReads();
    expectNoTokenShown(res.raw);
  });

  if (r.scope === 'write') {
    it('answers 403 Forbidden to a read token, writing nothing and showing no token', async () => {
      const res = await send(eventFor(r, READ_AUTH));
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ error: 'Forbidden', message: 'token "reader" is read-only; this needs a write token' });
      expectOnlyTokenReads();
      expectNoTokenShown(res.raw);
    });
  } else {
    it('serves a read token, writing nothing but the stack\'s own listing secret on first use', async () => {
      const res = await send(eventFor(r, READ_AUTH));
      expect(res.status).toBeLessThan(300);
      expect(fake.writes.filter((w) => w !== 'PutObject control/config/cursor-secret')).toEqual([]);
      expectNoTokenShown(res.raw);
    });
  }

  it('serves the write token, showing no token', async () => {
    const res = await send(eventFor(r, AUTH));
    expect(res.status).toBeLessThan(300);
    expectNoTokenShown(res.raw);
  });
});

describe('a token made by POST /tokens', () => {
  it('is in the answer and in no output line nor logger call', async () => {
    const res = await send(apiEvent('POST', '/tokens', { body: '{"name":"ci"}' }));
    const token = res.body.token as string;
    expect(token).toMatch(/^dfs_ci_/);
    const logged = logCalls.flatMap((spy) => spy.mock.calls.map((args) => inspect(args, { depth: null })));
    for (const line of [...output, ...logged]) expect(line).not.toContain(secretOf(token));
  });
});

describe('a read token', () => {
  it('plans a dry run with POST /reconcile?dryRun=1 (and force) and writes nothing', async () => {
    for (const query of [{ dryRun: '1' }, { dryRun: 'true', force: '1' }] as Record<string, string>[]) {
      const res = await send(apiEvent('POST', '/reconcile', { auth: READ_AUTH, query }));
      expect(res).toMatchObject({ status: 200, body: { dryRun: true, entries: [expect.objectContaining({ key: 'b.txt' })] } });
    }
    expect(fake.writes).toEqual([]);
    expect(failures.receive).not.toHaveBeenCalled();
  });

  it.each([[{}], [{ dryRun: '0' }], [{ dryRun: 'false' }], [{ force: '1' }]])('is refused POST /reconcile with %j (403), reconciling nothing', async (query) => {
    const res = await send(apiEvent('POST', '/reconcile', { auth: READ_AUTH, query }));
    expect(res.status).toBe(403);
    expectOnlyTokenReads();
  });
});

describe('flags', () => {
  it.each([['TRUE'], ['yes'], ['2'], ['']])('answers 400 to POST /reconcile?dryRun=%j and reconciles nothing, whatever the token', async (dryRun) => {
    for (const auth of [AUTH, READ_AUTH]) {
      const res = await send(apiEvent('POST', '/reconcile', { auth, query: { dryRun } }));
      expect(res).toMatchObject({ status: 400, body: { error: 'BadRequest', message: 'dryRun takes 1, true, 0 or false' } });
    }
    expectOnlyTokenReads();
    expect(s3mock).not.toHaveReceivedCommand(ListObjectsV2Command);
  });

  it('answers 400 to POST /reconcile?force=TRUE, reconciling nothing', async () => {
    const res = await send(apiEvent('POST', '/reconcile', { query: { force: 'TRUE' } }));
    expect(res).toMatchObject({ status: 400, body: { error: 'BadRequest', message: 'force takes 1, true, 0 or false' } });
    expect(fake.writes).toEqual([]);
    expect(s3mock).not.toHaveReceivedCommand(ListObjectsV2Command);
  });
});

describe('who', () => {
  it('is the token\'s name in the stamp of a write and the tombstone of a delete, whatever x-dfs-user says', async () => {
    const put = await send(apiEvent('PUT', '/files/new.txt', { body: 'x', headers: { 'x-dfs-user': 'mallory' } }));
    expect(put.status).toBe(200);
    expect(fake.has('bucket-1', 'new.txt')!.metadata).toMatchObject({ 'dfs-who': 'tester' });
    expect((await send(apiEvent('DELETE', '/files/a.txt', { headers: { 'x-dfs-user': 'mallory' } }))).status).toBe(200);
    expect(fake.records<Tombstone>(tombstoneKey('a.txt'))[0]).toMatchObject({ who: 'tester' });
    expect((await send(apiEvent('POST', '/tokens', { body: '{"name":"ci"}' }))).body).toMatchObject({ createdBy: 'tester' });
  });

  // DESIGN.md: the token's name is "the identity recorded as `who` in tombstones, journal and
  // locks". The journal's events (lib/types.ts JournalEvent) have no `who`.
  it('is the token\'s name in the journal events of an API delete', async () => {
    expect((await send(apiEvent('DELETE', '/files/a.txt'))).status).toBe(200);
    const events = fake.written<{ action: string; who?: string }>('journal/');
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(e).toMatchObject({ who: 'tester' });
  });
});

describe('direct invokes', () => {
  async function invoke(event: unknown) {
    return (await handler(event)) as { statusCode: number; body: Record<string, unknown> };
  }

  it('need no token, read none, and record lambda-invoke as who: a write, a delete, a token made', async () => {
    expect(await invoke({ method: 'PUT', path: '/files/new.txt', body: 'from the operator' })).toMatchObject({ statusCode: 200 });
    expect(fake.has('bucket-1', 'new.txt')!.metadata).toMatchObject({ 'dfs-who': 'lambda-invoke' });
    expect(await invoke({ method: 'DELETE', path: '/files/a.txt' })).toMatchObject({ statusCode: 200 });
    expect(fake.records<Tombstone>(tombstoneKey('a.txt'))[0]).toMatchObject({ who: 'lambda-invoke' });
    expect(await invoke({ method: 'POST', path: '/tokens', body: { name: 'ci', scope: 'read' } })).toMatchObject({ statusCode: 201, body: { createdBy: 'lambda-invoke' } });
    expect(s3mock.commandCalls(GetObjectCommand).filter((c) => c.args[0].input.Key?.startsWith('tokens/'))).toEqual([]);
  });

  it('take the request as one JSON string too', async () => {
    expect(await invoke(JSON.stringify({ method: 'GET', path: '/files/a.txt', query: { meta: '1' } }))).toMatchObject({ statusCode: 200, body: { status: 'SINGLE' } });
  });

  it('are not what an API Gateway event is, even one sent by invoke: it needs a token', async () => {
    const event = apiEvent('PUT', '/files/a.txt', { auth: null, body: 'sneaky' });
    expect(await invoke(event)).toMatchObject({ statusCode: 401 });
    expect(await invoke(JSON.parse(JSON.stringify(event)))).toMatchObject({ statusCode: 401 });
    expect(await invoke({ ...event, headers: { authorization: READ_AUTH } })).toMatchObject({ statusCode: 403 });
    expectOnlyTokenReads();
  });

  it.each([
    ['a REST API (payload 1.0) event', { version: '1.0', httpMethod: 'PUT', path: '/files/a.txt', headers: {}, requestContext: { httpMethod: 'PUT' }, body: 'x', isBase64Encoded: false }],
    ['an ALB event', { httpMethod: 'PUT', path: '/files/a.txt', headers: {}, requestContext: { elb: { targetGroupArn: 'arn' } }, body: 'x', isBase64Encoded: false }],
  ])('do not take %s for one: 400, nothing written', async (_, event) => {
    expect(await invoke(event)).toMatchObject({ statusCode: 400, body: { error: 'BadRequest' } });
    expect(fake.writes).toEqual([]);
  });

  it.each([
    ['no method', { path: '/files/a.txt', body: 'x' }],
    ['a method that is not a string', { method: ['PUT'], path: '/files/a.txt', body: 'x' }],
    ['a path without "/"', { method: 'PUT', path: 'files/a.txt', body: 'x' }],
    ['a path that is not a string', { method: 'PUT', path: 7, body: 'x' }],
    ['headers that are not strings', { method: 'PUT', path: '/files/a.txt', headers: { 'x-dfs-mtime': 1700000000000 }, body: 'x' }],
    ['headers that are not an object', { method: 'PUT', path: '/files/a.txt', headers: 'x-dfs-mtime: 1', body: 'x' }],
    ['a query that is not strings', { method: 'PUT', path: '/files/a.txt', query: { touch: 1 }, body: 'x' }],
    ['a base64 body that is not base64', { method: 'PUT', path: '/files/a.txt', body: 'not*base64', isBase64Encoded: true }],
    ['a body that is a number', { method: 'PUT', path: '/files/a.txt', body: 12 }],
    ['the old {"op"} shape', { op: 'get', key: 'a.txt' }],
  ])('answer 400 BadRequest for %s, writing nothing', async (_, event) => {
    expect(await invoke(event)).toEqual({ statusCode: 400, body: { error: 'BadRequest', message: expect.any(String) } });
    expect(fake.writes).toEqual([]);
    expect(s3mock.calls()).toEqual([]);
  });

  it.each([['null', null], ['a number', 7], ['an array', []], ['a string that is not JSON', 'PUT /files/a.txt']])('answer 400 BadRequest for %s', async (_, event) => {
    expect(await invoke(event)).toMatchObject({ statusCode: 400, body: { error: 'BadRequest' } });
    expect(s3mock.calls()).toEqual([]);
  });
});

describe('malformed API Gateway events', () => {
  it.each([
    ['no requestContext.http', {}],
    ['requestContext.http without method', { http: { path: '/files/a.txt' } }],
  ])('answer 400 BadRequest, not 500, for %s, with or without a token', async (_, requestContext) => {
    for (const auth of [AUTH, null]) {
      const event = { ...apiEvent('PUT', '/files/a.txt', { auth, body: 'x' }), requestContext } as unknown as APIGatewayProxyEventV2;
      expect(await send(event)).toMatchObject({ status: 400, body: { error: 'BadRequest', message: 'the event has no requestContext.http.method' } });
    }
    expect(fake.writes).toEqual([]);
  });

  it.each([['!!!!'], ['QUJD='], ['QUJDRA=A'], ['QUJD RA==']])('answer 400 for a body marked base64 that is not (%j), writing nothing', async (body) => {
    const res = await send(apiEvent('PUT', '/files/a.txt', { body, isBase64Encoded: true }));
    expect(res).toMatchObject({ status: 400, body: { error: 'BadRequest', message: 'the body says it is base64 but is not' } });
    expect(fake.writes).toEqual([]);
    expect(fake.textOf('bucket-1', 'a.txt')).toBe('same bytes');
  });

  const invalidUtf8 = (json: string, at: string) => {
    const [before, after] = json.split(at) as [string, string];
    return Buffer.concat([Buffer.from(before), Buffer.from([0xc3, 0x28]), Buffer.from(after)]).toString('base64');
  };

  it.each([
    ['POST /tokens', '/tokens', '{"name":"a@"}'],
    ['POST /uploads', '/uploads', '{"key":"a@.bin","size":1}'],
    ['POST /reconcile/apply', '/reconcile/apply', '{"entries":[{"key":"a@.txt"}]}'],
  ])('answer 400 to %s with a JSON body of invalid UTF-8, writing nothing', async (_, path, json) => {
    const res = await send(apiEvent('POST', path, { body: invalidUtf8(json, '@'), isBase64Encoded: true }));
    expect(res).toMatchObject({ status: 400, body: { error: 'BadRequest', message: 'the body is not valid UTF-8' } });
    expect(fake.writes).toEqual([]);
  });
});

describe('the control bucket not answering the token read', () => {
  it('is a 503 that logs the error and neither the token nor its secret', async () => {
    fake.fail('control', networkError);
    const res = await send(apiEvent('PUT', '/files/a.txt', { body: 'x' }));
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error: 'Unavailable' });
    expect(logger.warn).toHaveBeenCalled();
    expect(fake.writes).toEqual([]);
    expectNoTokenShown(res.raw);
  });
});
