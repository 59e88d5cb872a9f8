import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { errorResponse, http, logger, ok, type ApiRequest, type Route } from '../../handlers/http';
import {
  AllStoresUnavailableError,
  BadRequestError,
  InvalidKeyError,
  NotFoundError,
  PayloadTooLargeError,
  StoreUnavailableError,
  UnknownStoreError,
} from '../../lib/errors';
import { apiEvent } from '../helpers/apigw';

let logError: jest.SpyInstance;
let logWarn: jest.SpyInstance;

beforeEach(() => {
  logError = jest.spyOn(logger, 'error').mockImplementation(() => undefined);
  logWarn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
});

afterEach(() => jest.restoreAllMocks());

const deps = { name: 'deps' };
const noDirect = () => {
  throw new BadRequestError('no direct calls here');
};

/** A handler whose route records the request it was given and answers with `answer`. */
function echo(answer: (req: ApiRequest) => Promise<ReturnType<typeof ok>> = async (req) => ok(req)) {
  const seen: { req?: ApiRequest; deps?: unknown } = {};
  const route: Route<typeof deps> = async (req, d) => {
    seen.req = req;
    seen.deps = d;
    return answer(req);
  };
  return { handler: http(route, () => deps, noDirect), seen };
}

const asApi = (res: unknown) => res as APIGatewayProxyStructuredResultV2 & { body: string };

describe('http: API Gateway events', () => {
  it('turns the event into a request: decoded path, upper-case method, lower-case headers, query', async () => {
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
      headers: { 'x-dfs-user': 'ann', accept: 'application/json' },
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
    const route = jest.fn();
    const handler = http(route, () => {
      throw new Error('environment variable DFS_STORES is required');
    }, noDirect);
    const res = asApi(await handler(apiEvent('GET', '/files/a')));

    expect(res.statusCode).toBe(500);
    expect(res.body).toBe('{"error":"Internal"}');
    expect(route).not.toHaveBeenCalled();
  });
});

describe('http: direct invocations', () => {
  it('answers { statusCode, body } with the body as an object', async () => {
    const handler = http(async (req) => ok({ path: req.path }, 202), () => deps, (e) => ({ method: 'GET', path: String((e as { p: string }).p), query: {}, headers: {} }));
    await expect(handler({ p: '/files/x' })).resolves.toEqual({ statusCode: 202, body: { path: '/files/x' } });
  });

  it('maps an error of the event parser like any other', async () => {
    const handler = http(jest.fn(), () => deps, noDirect);
    await expect(handler({ op: 'nope' })).resolves.toEqual({ statusCode: 400, body: { error: 'BadRequest', message: 'no direct calls here' } });
  });

  it('takes an object without requestContext or rawPath as direct', async () => {
    const fromDirect = jest.fn(noDirect);
    const handler = http(jest.fn(), () => deps, fromDirect);
    await handler({ rawPath: '/files/a' });
    await handler({ requestContext: {} });
    await handler(null);
    expect(fromDirect).toHaveBeenCalledTimes(3);
  });
});

describe('errorResponse', () => {
  it.each([
    ['InvalidKey', 400, new InvalidKeyError('key is empty')],
    ['BadRequest', 400, new BadRequestError('bad')],
    ['UnknownStore', 400, new UnknownStoreError('no store server9')],
    ['NotFound', 404, new NotFoundError('no route')],
    ['PayloadTooLarge', 413, new PayloadTooLargeError('too big')],
  ] as const)('shows the client error %s with status %i and its message', (code, status, err) => {
    expect(errorResponse(err)).toEqual({ statusCode: status, body: { error: code, message: err.message } });
    expect(logError).not.toHaveBeenCalled();
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
    ['a lone StoreUnavailableError', new StoreUnavailableError('server1', { cause: new Error('ECONNRESET') })],
    ['a thrown string', 'oops'],
    ['undefined', undefined],
  ])('hides %s behind a bare 500 Internal', (_, err) => {
    expect(errorResponse(err)).toEqual({ statusCode: 500, body: { error: 'Internal' } });
    expect(logError).toHaveBeenCalledTimes(1);
  });
});
