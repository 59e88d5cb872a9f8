import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { DIRECT_INVOKE, errorResponse, fromDirect, http, logger, ok, type ApiRequest, type AuthedRequest, type RouteSpec } from '../../handlers/http';
import {
  AllStoresUnavailableError,
  BadRequestError,
  ForbiddenError,
  InvalidKeyError,
  NotFoundError,
  PayloadTooLargeError,
  StoreUnavailableError,
  UnauthorizedError,
  UnknownStoreError,
} from '../../lib/errors';
import { forgetTokens } from '../../lib/tokens';
import { AUTH, READ_AUTH, apiEvent, putTestTokens } from '../helpers/apigw';
import { useFakeS3 } from '../helpers/mock-s3';

const { s3mock, fake } = useFakeS3();
let logError: jest.SpyInstance;
let logWarn: jest.SpyInstance;

beforeEach(async () => {
  forgetTokens();
  await putTestTokens((key, text) => fake.put('control', key, text));
  logError = jest.spyOn(logger, 'error').mockImplementation(() => undefined);
  logWarn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
});

afterEach(() => jest.restoreAllMocks());

const deps = { name: 'deps', control: { bucket: 'control', s3: new S3Client({ region: 'us-east-1' }) } };
type D = typeof deps;

/**
 * A handler with one route of `scope` for every request, which records the request it was given
 * and answers with `answer`.
 */
function echo(answer: (req: AuthedRequest) => Promise<ReturnType<typeof ok>> = async (req) => ok(req), scope: RouteSpec<D>['scope'] = 'read') {
  const seen: { req?: AuthedRequest; deps?: unknown } = {};
  const spec: RouteSpec<D> = {
    scope,
    handle: async (req, d) => {
      seen.req = req;
      seen.deps = d;
      return answer(req);
    },
  };
  return { handler: http(() => spec, () => deps), seen };
}

const asApi = (res: unknown) => res as APIGatewayProxyStructuredResultV2 & { body: string };

describe('http: API Gateway events', () => {
  it('turns the event into a request: decoded path, upper-case method, lower-case headers, query, and who sent it', async () => {
    const { handler, seen } = echo();
    await handler(
      apiEvent('get', '/files/dir/a%20b%2Bc%25.txt', {
        headers: { 'X-Dfs-User': 'ann', Accept: 'application/json' },
        query: { meta: '1', prefix: 'a b' },
      }),
    );

    expect(seen.req).toEqual({
      method: 'GET',
      path: '/files/dir/a b+c%.txt',
      query: { meta: '1', prefix: 'a b' },
      headers: { authorization: AUTH, 'x-dfs-user': 'ann', accept: 'application/json' },
      // The token's name, not the x-dfs-user header.
      who: { name: 'tester', scope: 'write' },
    });
    expect(seen.deps).toBe(deps);
  });

  it('passes the body as bytes, decoding base64 when API Gateway says so', async () => {
    const { handler, seen } = echo();
    await handler(apiEvent('PUT', '/files/a', { body: 'héllo' }));
    expect(seen.req!.body).toEqual(Buffer.from('héllo'));

    await handler(apiEvent('PUT', '/files/a', { body: Buffer.from([0, 255, 1]).toString('base64'), isBase64Encoded: true }));
    expect(seen.req!.body).toEqual(Buffer.from([0, 255, 1]));
  });

  it('answers 400 for a text body holding U+FFFD, which API Gateway puts for bytes that were not UTF-8, before the route runs', async () => {
    const { handler, seen } = echo();
    const res = asApi(await handler(apiEvent('PUT', '/files/a', { body: 'caf\ufffd' })));
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'BadRequest', message: expect.stringContaining('application/octet-stream') });
    expect(seen.req).toBeUndefined();

    // Bytes that came base64 are what was sent, U+FFFD's UTF-8 included.
    await handler(apiEvent('PUT', '/files/a', { body: Buffer.from('caf\ufffd').toString('base64'), isBase64Encoded: true }));
    expect(seen.req!.body).toEqual(Buffer.from('caf\ufffd'));
  });

  it.each([
    ['not of the base64 alphabet', '!!!!'],
    ['of a length that is not a multiple of 4', 'AAA'],
    ['padded in the middle', 'AA==AAAA'],
  ])('answers 400 BadRequest for a base64 body %s, before the route runs', async (_, body) => {
    const { handler, seen } = echo();
    const res = asApi(await handler(apiEvent('PUT', '/files/a', { body, isBase64Encoded: true })));
    expect([res.statusCode, JSON.parse(res.body)]).toEqual([400, { error: 'BadRequest', message: 'the body says it is base64 but is not' }]);
    expect(seen.req).toBeUndefined();
  });

  it('answers JSON that no cache keeps, with the route headers added', async () => {
    const { handler } = echo(async () => ({ statusCode: 201, body: { done: true }, headers: { location: '/files/a' } }));
    const res = asApi(await handler(apiEvent('GET', '/x')));

    expect(res).toEqual({
      statusCode: 201,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', location: '/files/a' },
      body: '{"done":true}',
    });
  });

  it('answers 400 BadRequest for a path that is not valid percent-encoding, before the route runs', async () => {
    const { handler, seen } = echo();
    const res = asApi(await handler(apiEvent('GET', '/files/%E0%A4%A')));

    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body)).toEqual({ error: 'BadRequest', message: 'the path is not valid percent-encoding' });
    expect(seen.req).toBeUndefined();
  });

  it.each([
    ['no requestContext.http', {}],
    ['no method in requestContext.http', { http: {} }],
    ['a method that is not a string', { http: { method: 7 } }],
  ])('answers 400 BadRequest, not 500, for an event with %s', async (_, requestContext) => {
    const { handler, seen } = echo();
    const res = asApi(await handler({ ...apiEvent('GET', '/files/a'), requestContext } as never));
    expect([res.statusCode, JSON.parse(res.body)]).toEqual([400, { error: 'BadRequest', message: 'the event has no requestContext.http.method' }]);
    expect(seen.req).toBeUndefined();
    expect(logError).not.toHaveBeenCalled();
  });

  it('answers a bare 500 Internal for an unexpected error, logging it in full', async () => {
    const boom = new Error('GetObject s3://dfs-secret-bucket/key failed\n    at stack frame');
    const { handler } = echo(async () => {
      throw boom;
    });
    const res = asApi(await handler(apiEvent('GET', '/files/a')));

    expect(res.statusCode).toBe(500);
    expect(res.body).toBe('{"error":"Internal"}');
    expect(logError).toHaveBeenCalledWith('unhandled error', { error: boom });
  });

  it('answers 500 Internal when the deps cannot be built (bad config), without saying why', async () => {
    const handle = jest.fn();
    const handler = http(() => ({ scope: 'read', handle }), () => {
      throw new Error('environment variable DFS_STORES is required');
    });
    const res = asApi(await handler(apiEvent('GET', '/files/a')));

    expect(res.statusCode).toBe(500);
    expect(res.body).toBe('{"error":"Internal"}');
    expect(handle).not.toHaveBeenCalled();
  });
});

describe('http: tokens', () => {
  it('answers 401 Unauthorized with WWW-Authenticate: Bearer without a token, before the route runs', async () => {
    const { handler, seen } = echo();
    const res = asApi(await handler(apiEvent('GET', '/files/a', { auth: null })));
    expect(res.statusCode).toBe(401);
    expect(res.headers).toMatchObject({ 'www-authenticate': 'Bearer', 'cache-control': 'no-store' });
    expect(JSON.parse(res.body)).toMatchObject({ error: 'Unauthorized' });
    expect(seen.req).toBeUndefined();
  });

  it('answers 403 Forbidden to a read token on a write route, and lets it through a read route', async () => {
    const write = echo(undefined, 'write');
    const res = asApi(await write.handler(apiEvent('PUT', '/files/a', { auth: READ_AUTH, body: 'x' })));
    expect([res.statusCode, JSON.parse(res.body)]).toEqual([403, { error: 'Forbidden', message: 'token "reader" is read-only; this needs a write token' }]);
    expect(res.headers).not.toHaveProperty('www-authenticate');
    expect(write.seen.req).toBeUndefined();

    const read = echo(undefined, 'read');
    expect(asApi(await read.handler(apiEvent('GET', '/files/a', { auth: READ_AUTH }))).statusCode).toBe(200);
    expect(read.seen.req!.who).toEqual({ name: 'reader', scope: 'read' });
  });

  it('asks a scope function for the scope of each request', async () => {
    const scope = jest.fn((req: ApiRequest) => (req.query.dryRun === '1' ? 'read' as const : 'write' as const));
    const { handler } = echo(undefined, scope);
    expect(asApi(await handler(apiEvent('POST', '/reconcile', { auth: READ_AUTH, query: { dryRun: '1' } }))).statusCode).toBe(200);
    expect(asApi(await handler(apiEvent('POST', '/reconcile', { auth: READ_AUTH }))).statusCode).toBe(403);
    expect(scope).toHaveBeenCalledTimes(2);
  });

  it('serves a public route without a token, as anonymous, and reads no token', async () => {
    const { handler, seen } = echo(undefined, 'public');
    expect(asApi(await handler(apiEvent('GET', '/', { auth: null }))).statusCode).toBe(200);
    expect(seen.req!.who).toEqual({ name: 'anonymous', scope: 'read' });
    expect(s3mock.calls()).toHaveLength(0);
  });

  it('answers an unknown route 401 without a token and 404 NoRoute with one, so it tells nothing to a stranger', async () => {
    const handler = http<D>(() => undefined, () => deps);
    const stranger = asApi(await handler(apiEvent('GET', '/admin', { auth: null })));
    expect([stranger.statusCode, JSON.parse(stranger.body).error]).toEqual([401, 'Unauthorized']);
    const known = asApi(await handler(apiEvent('GET', '/admin')));
    expect([known.statusCode, JSON.parse(known.body)]).toEqual([404, { error: 'NoRoute', message: 'no route for GET /admin' }]);
  });

  it('answers 503, not 401, when the control bucket does not answer the token read: the token may be fine', async () => {
    fake.fail('control', () => Object.assign(new Error('connect ECONNREFUSED'), { name: 'TimeoutError' }));
    const { handler, seen } = echo();
    const res = asApi(await handler(apiEvent('GET', '/files/a')));
    expect(res.statusCode).toBe(503);
    expect(JSON.parse(res.body as string)).toMatchObject({ error: 'Unavailable' });
    expect(seen.req).toBeUndefined();
  });
});

describe('http: direct invocations', () => {
  it('answers { statusCode, body } with the body as an object, as the operator with write scope', async () => {
    const { handler, seen } = echo(async (req) => ok({ path: req.path }, 202), 'write');
    await expect(handler({ method: 'get', path: '/files/x' })).resolves.toEqual({ statusCode: 202, body: { path: '/files/x' } });
    expect(seen.req).toEqual({ method: 'GET', path: '/files/x', query: {}, headers: {}, who: DIRECT_INVOKE });
    expect(DIRECT_INVOKE).toEqual({ name: 'lambda-invoke', scope: 'write' });
    // No token is read: IAM decided who may invoke.
    expect(s3mock.calls()).toHaveLength(0);
  });

  it('takes the event as a JSON string too, with query, lower-cased headers and a JSON body', async () => {
    const { handler, seen } = echo();
    const event = { method: 'POST', path: '/uploads', query: { to: 'server1' }, headers: { 'X-Dfs-Mtime': '5' }, body: { key: 'k', size: 1 } };
    await handler(JSON.stringify(event));
    expect(seen.req).toMatchObject({ method: 'POST', path: '/uploads', query: { to: 'server1' }, headers: { 'x-dfs-mtime': '5' } });
    expect(JSON.parse(seen.req!.body!.toString())).toEqual({ key: 'k', size: 1 });
  });

  it('does not percent-decode the path, and decodes a base64 body', async () => {
    const { handler, seen } = echo();
    await handler({ method: 'PUT', path: '/files/100%.txt', body: Buffer.from([0, 255]).toString('base64'), isBase64Encoded: true });
    expect(seen.req).toMatchObject({ path: '/files/100%.txt', body: Buffer.from([0, 255]) });
  });

  it('ignores an Authorization header: the invoke is the operator\'s whatever it carries', async () => {
    const { handler, seen } = echo();
    await handler({ method: 'GET', path: '/files/x', headers: { authorization: 'Bearer dfs_nobody_nothing' } });
    expect(seen.req!.who).toBe(DIRECT_INVOKE);
  });

  it.each([
    ['null', null],
    ['a number', 42],
    ['an array', [{ method: 'GET', path: '/files/a' }]],
    ['a string that is not JSON', 'GET /files/a'],
    ['an object without method', { path: '/files/a' }],
    ['a method that is not a string', { method: 1, path: '/files/a' }],
    ['a method that is not a word', { method: 'GET /files/a', path: '/files/a' }],
    ['an object without path', { method: 'GET' }],
    ['a path without a leading "/"', { method: 'GET', path: 'files/a' }],
    ['headers that are not strings', { method: 'GET', path: '/files/a', headers: { 'x-dfs-mtime': 5 } }],
    ['headers that are an array', { method: 'GET', path: '/files/a', headers: ['x'] }],
    ['a query that is not strings', { method: 'GET', path: '/files/a', query: { meta: true } }],
    ['a body that says base64 but is not', { method: 'PUT', path: '/files/a', body: 'not base64!', isBase64Encoded: true }],
    ['a body that is a number', { method: 'PUT', path: '/files/a', body: 5 }],
    ['an old {"op":"get"} event', { op: 'get', key: 'fileA.txt' }],
    ['an object with rawPath but no requestContext', { rawPath: '/files/a' }],
    ['an object with requestContext but no rawPath', { requestContext: {} }],
  ])('answers 400 BadRequest for %s, before the route runs', async (_, event) => {
    const { handler, seen } = echo();
    const res = (await handler(event)) as { statusCode: number; body: { error: string; message: string } };
    expect(res).toEqual({ statusCode: 400, body: { error: 'BadRequest', message: expect.any(String) } });
    expect(seen.req).toBeUndefined();
  });

  it('is what an object with both requestContext and rawPath is not: that is API Gateway\'s, and needs a token', async () => {
    const { handler, seen } = echo(undefined, 'read');
    const res = asApi(await handler(apiEvent('GET', '/files/a', { auth: null })));
    expect(res.statusCode).toBe(401);
    expect(seen.req).toBeUndefined();
  });
});

describe('fromDirect', () => {
  it('gives the request the event stands for', () => {
    expect(fromDirect({ method: 'delete', path: '/files/a b', query: { force: '1' }, headers: { Accept: 'x' } })).toEqual({
      method: 'DELETE', path: '/files/a b', query: { force: '1' }, headers: { accept: 'x' },
    });
  });
});

describe('errorResponse', () => {
  it.each([
    ['InvalidKey', 400, new InvalidKeyError('key is empty')],
    ['BadRequest', 400, new BadRequestError('bad')],
    ['UnknownStore', 400, new UnknownStoreError('no store server9')],
    ['Forbidden', 403, new ForbiddenError('read-only')],
    ['NotFound', 404, new NotFoundError('no route')],
    ['PayloadTooLarge', 413, new PayloadTooLargeError('too big')],
  ] as const)('shows the client error %s with status %i and its message', (code, status, err) => {
    expect(errorResponse(err)).toEqual({ statusCode: status, body: { error: code, message: err.message } });
    expect(logError).not.toHaveBeenCalled();
  });

  it('answers 401 Unauthorized with WWW-Authenticate: Bearer', () => {
    const err = new UnauthorizedError('no token');
    expect(errorResponse(err)).toEqual({ statusCode: 401, body: { error: 'Unauthorized', message: 'no token' }, headers: { 'www-authenticate': 'Bearer' } });
  });

  it('answers 503 Unavailable with the stores when none answered, and logs it', () => {
    const err = new AllStoresUnavailableError(['server1', 'server2']);
    expect(errorResponse(err)).toEqual({
      statusCode: 503,
      body: { error: 'Unavailable', message: 'no store answered (server1, server2)', unavailable: ['server1', 'server2'] },
    });
    expect(logWarn).toHaveBeenCalled();
  });

  it.each([
    ['a plain Error', new Error('bucket dfs-prod-1 said no')],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'map')")],
    ['a thrown string', 'oops'],
    ['undefined', undefined],
  ])('hides %s behind a bare 500 Internal', (_, err) => {
    expect(errorResponse(err)).toEqual({ statusCode: 500, body: { error: 'Internal' } });
    expect(logError).toHaveBeenCalledTimes(1);
  });

  it('answers a store that did not answer outside any store loop as 503 naming it, and the control bucket as the stack\'s', () => {
    expect(errorResponse(new StoreUnavailableError('server1', { cause: new Error('ECONNRESET') }))).toEqual({
      statusCode: 503,
      body: { error: 'Unavailable', message: 'no store answered (server1)', unavailable: ['server1'] },
    });
    expect(errorResponse(new StoreUnavailableError('control', { cause: new Error('ECONNRESET') }))).toEqual({
      statusCode: 503,
      body: { error: 'Unavailable', message: "the stack's control bucket did not answer; nothing was done, try again" },
    });
  });
});
