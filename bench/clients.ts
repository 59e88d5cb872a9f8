/**
 * How benchmarks (and their child processes) reach the bench's s3rver: production deps with a
 * meter, a socket-counting agent, and ETags made multipart-style. Nothing here loads esbuild or
 * anything else a measured child process should not carry.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { Agent, type ClientRequestArgs } from 'node:http';
import type { Socket } from 'node:net';
import { createS3Client, loadConfig, s3ClientConfig } from '../lib/config';
import { createDeps, type Deps } from '../lib/deps';

/**
 * Deps as production builds them (lib/config loadConfig + lib/deps createDeps: default inline
 * limit, 8 MiB compare chunks) for two stores on the bench's s3rver, with a meter.
 */
export function benchDeps(endpoint: string, buckets: string[], control = 'control'): Deps & { meter: { bodyBytes: number } } {
  const config = loadConfig({
    DFS_STORES: buckets.map((b, i) => `server${i + 1}=${b}`).join(','),
    DFS_CONTROL_BUCKET: control,
    DFS_S3_ENDPOINT: endpoint,
    DFS_S3_FLAVOR: 's3rver',
  });
  return { ...createDeps(config), meter: { bodyBytes: 0 } };
}

/**
 * An http.Agent that counts the bytes its sockets receive (headers included) and the
 * connections it opens: what actually crossed the wire, next to what the code consumed.
 */
export class CountingAgent extends Agent {
  private closedBytes = 0;
  private readonly live = new Set<Socket>();
  connections = 0;

  constructor() {
    super({ keepAlive: true, maxSockets: 50 });
  }

  override createConnection(options: ClientRequestArgs, callback?: (err: Error | null, stream: Socket) => void) {
    const socket = super.createConnection(options, callback as never) as Socket;
    this.connections++;
    this.live.add(socket);
    socket.once('close', () => {
      this.live.delete(socket);
      this.closedBytes += socket.bytesRead;
    });
    return socket;
  }

  bytesRead(): number {
    let n = this.closedBytes;
    for (const s of this.live) n += s.bytesRead;
    return n;
  }
}

/** A client like createS3Client's, on a given agent. */
export function clientOnAgent(endpoint: string, agent: Agent): S3Client {
  return new S3Client({ ...s3ClientConfig({ endpoint }), requestHandler: { httpAgent: agent, connectionTimeout: 3000, requestTimeout: 60_000 } });
}

/**
 * A client whose answers carry multipart-style ETags (`"<md5>-N"`), as S3 gives objects
 * uploaded in N parts. s3rver stores every object, multipart or not, under its plain MD5, so
 * equal copies always look equal there; with different N per store, equal copies look like
 * equal content uploaded with different part sizes and only a byte compare can tell. s3rver
 * ignores If-Match on GET, so the rewritten ETag sent back by ranged reads does no harm.
 */
export function multipartEtagClient(endpoint: string, parts: number, agent?: Agent): S3Client {
  const client = agent ? clientOnAgent(endpoint, agent) : createS3Client({ endpoint });
  client.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const o = out.output as { ETag?: string };
      if (o.ETag && !o.ETag.includes('-')) o.ETag = o.ETag.replace(/"?$/, `-${parts}"`);
      return out;
    },
    { step: 'initialize', name: 'benchMultipartEtag' },
  );
  return client;
}

