import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpTransport } from '../../cli/client';
import { sendRequest, TimeoutError } from '../../cli/http';

describe('sendRequest', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    // Accepts every request and never answers: only a timeout ends it.
    server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('gives up on a server that says nothing for the idle timeout', async () => {
    await expect(sendRequest(`${url}/x`, { timeouts: { connectMs: 5000, idleMs: 150 } })).rejects.toEqual(new TimeoutError('IdleTimeout', 150));
  });
});

describe('httpTransport errors', () => {
  const op = { op: 'get', key: 'a.txt' } as const;
  const failing = (err: unknown) => (async () => Promise.reject(err)) as unknown as typeof fetch;

  it('names the timeout that expired and where to change it', async () => {
    const t = httpTransport({ endpoint: 'https://api.example.com', fetch: failing(new TimeoutError('ConnectTimeout', 10_000)), timeoutsFrom: 'DFS_CONNECT_TIMEOUT' });
    await expect(t.send(op)).rejects.toMatchObject({
      exitCode: 1,
      code: 'Timeout',
      message: expect.stringMatching(/^cannot connect to https:\/\/api\.example\.com within 10 s \(timeouts from DFS_CONNECT_TIMEOUT; DFS_CONNECT_TIMEOUT \/ DFS_IDLE_TIMEOUT or/),
    });
  });

  it.each([
    ['http://localhost:3000', /Start the local stack with `npm start`/],
    ['https://abc.execute-api.eu-west-1.amazonaws.com', /Check the URL and your network/],
  ])('fits the hint to where %s is', async (endpoint, hint) => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    const err = await httpTransport({ endpoint, fetch: failing(refused) }).send(op).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(hint);
    if (!endpoint.includes('localhost')) expect((err as Error).message).not.toContain('npm start');
  });

  it('tells debug one line per request with the request id, never the token', async () => {
    const lines: string[] = [];
    const ok = (async () => new Response('{"status":"NOT_FOUND","key":"a.txt","unavailable":[]}', { status: 404, headers: { 'apigw-requestid': 'r-1' } })) as unknown as typeof fetch;
    const { Token } = await import('../../cli/config');
    await httpTransport({ endpoint: 'http://h', fetch: ok, token: new Token('dfs_ann_SECRET', 'DFS_TOKEN'), debug: (l) => lines.push(l) }).send(op);
    expect(lines).toEqual([expect.stringMatching(/^GET \/files\/a\.txt → 404 in \d+ ms \(request id r-1\)$/)]);
    expect(lines.join()).not.toContain('SECRET');
  });
});
