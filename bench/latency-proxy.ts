/**
 * A TCP proxy that makes a loopback S3 answer like a distant one: the first byte of every
 * request is held for one round trip (`rttMs`) before it goes on, and every other byte, both
 * ways, passes through untouched and in order. So a request costs one RTT more, as it does
 * against S3 over a network, and requests sent at once (readFile's GET ∥ HEAD) wait out their
 * round trips together, as they do there. The kernel here has no netem, so the delay is put in
 * user space. (Toxiproxy, the usual tool, is a Go server that is not packaged here, and its
 * latency toxic delays every chunk rather than each request.)
 *
 * A request is told apart without parsing HTTP: on a connection, the client's bytes that come
 * after the server has answered (or the connection's first bytes) begin a new request. That
 * holds for HTTP/1.1 as the SDK speaks it: one request at a time per connection.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface LatencyProxy {
  /** The port it listens on, on 127.0.0.1. */
  port: number;
  /** Requests it delayed so far. */
  delayed(): number;
  close(): Promise<void>;
}

export async function startLatencyProxy(target: { host: string; port: number }, rttMs: number): Promise<LatencyProxy> {
  const sockets = new Set<Socket>();
  let delayed = 0;
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    // True when the next byte from the client begins a request.
    let newRequest = true;
    client.on('data', (chunk: Buffer) => {
      if (!newRequest || rttMs === 0) {
        upstream.write(chunk);
        return;
      }
      newRequest = false;
      delayed++;
      // Later bytes of the request wait behind this one: the client is paused until it is sent.
      client.pause();
      setTimeout(() => {
        upstream.write(chunk);
        client.resume();
      }, rttMs);
    });
    upstream.on('data', (chunk: Buffer) => {
      newRequest = true;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.once('close', () => {
        sockets.delete(s);
        end();
      });
      s.on('error', end);
    }
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    port,
    delayed: () => delayed,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
