import { httpTransport, isLocalEndpoint, routeOf } from '../../cli/client';

describe('routeOf', () => {
  it('percent-encodes each segment of a key, keeping "/"', () => {
    expect(routeOf({ op: 'get', key: 'docs/a b+c%.txt' })).toEqual({ method: 'GET', path: '/files/docs/a%20b%2Bc%25.txt' });
    expect(routeOf({ op: 'get', key: 'a', meta: true }).path).toBe('/files/a?meta=1');
  });

  it('puts listing parameters in the query', () => {
    expect(routeOf({ op: 'list' }).path).toBe('/files');
    expect(routeOf({ op: 'list', prefix: 'a b/', after: 'x', limit: 10 }).path).toBe('/files?prefix=a+b%2F&after=x&limit=10');
  });
});

describe('httpTransport', () => {
  const fakeFetch = (res: Response | Error) => jest.fn(async () => {
    if (res instanceof Error) throw res;
    return res;
  }) as unknown as typeof fetch;

  it('answers {status, body} with the body parsed, for error statuses too', async () => {
    const f = fakeFetch(new Response('{"error":"InvalidKey","message":"m"}', { status: 400 }));
    await expect(httpTransport({ endpoint: 'http://api/prod', fetch: f }).send({ op: 'get', key: 'a' })).resolves.toEqual({
      status: 400,
      body: { error: 'InvalidKey', message: 'm' },
    });
    expect(f).toHaveBeenCalledWith('http://api/prod/files/a', expect.objectContaining({ method: 'GET' }));
  });

  it('says what to do when the API cannot be reached', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    await expect(httpTransport({ endpoint: 'http://localhost:3000', endpointFrom: 'DFS_ENDPOINT', fetch: fakeFetch(refused) }).send({ op: 'get', key: 'a' })).rejects.toMatchObject({
      exitCode: 1,
      code: 'Network',
      message: expect.stringMatching(/^cannot reach the API at http:\/\/localhost:3000 \(ECONNREFUSED\); the endpoint comes from DFS_ENDPOINT/),
    });
  });

  it('refuses a reply that is not JSON (a proxy page, the wrong port)', async () => {
    const f = fakeFetch(new Response('<html>Bad Gateway</html>', { status: 502 }));
    await expect(httpTransport({ endpoint: 'http://api', fetch: f }).send({ op: 'get', key: 'a' })).rejects.toMatchObject({ exitCode: 1, code: 'BadResponse' });
  });
});

describe('isLocalEndpoint', () => {
  it.each([
    ['http://localhost:3002', true],
    ['http://127.0.0.1:3002', true],
    ['http://[::1]:3002', true],
    ['https://lambda.eu-west-1.amazonaws.com', false],
    ['http://localhost.evil.com', false],
  ])('%s → %s', (url, local) => expect(isLocalEndpoint(url)).toBe(local));
});
