import { createServer, request, Agent, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { startLatencyProxy, type LatencyProxy } from '../../bench/latency-proxy';

/** An HTTP server on 127.0.0.1 that answers every request with its own body. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => res.end(Buffer.concat(parts)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port };
}

function post(port: number, agent: Agent, body: Buffer): Promise<{ ms: number; body: Buffer }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ ms: performance.now() - t0, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('bench latency proxy', () => {
  let echo: { server: Server; port: number };
  let proxy: LatencyProxy | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  beforeAll(async () => {
    echo = await echoServer();
  });
  afterEach(async () => {
    agent.destroy();
    await proxy?.close();
  });
  afterAll(() => new Promise((r) => echo.server.close(r)));

  it('holds the first byte of each request on a kept-alive connection for the round trip, passing every byte both ways', async () => {
    proxy = await startLatencyProxy({ host: '127.0.0.1', port: echo.port }, 40);
    for (const size of [10, 3 * 1024 * 1024]) {
      const body = randomBytes(size);
      const answer = await post(proxy.port, agent, body);
      expect(answer.body.equals(body)).toBe(true);
      // A delay cannot be shorter than asked; the timer may fire a little early by the clock used here.
      expect(answer.ms).toBeGreaterThanOrEqual(39);
    }
    expect(proxy.delayed()).toBe(2);
  });

  it('delays nothing with a round trip of 0', async () => {
    proxy = await startLatencyProxy({ host: '127.0.0.1', port: echo.port }, 0);
    const body = randomBytes(1000);
    expect((await post(proxy.port, agent, body)).body.equals(body)).toBe(true);
    expect(proxy.delayed()).toBe(0);
  });
});
