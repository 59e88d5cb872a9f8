import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// s3rver ships no types.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const S3rver = require('s3rver');
import { createS3Client } from '../../lib/config';
import { makeS3rverLikeS3 } from '../../scripts/s3rver-like-s3';
import type { S3Client } from '@aws-sdk/client-s3';

export interface LocalS3 {
  endpoint: string;
  port: number;
  directory: string;
  /** A client configured exactly as the local stack configures its own. */
  client: S3Client;
  /** The s3rver instance, for tests that listen to its `event` emitter. */
  server: { on(event: 'event', fn: (e: unknown) => void): void };
  stop(): Promise<void>;
}

export interface S3rverOptions {
  /**
   * Make it keep S3's promises as the local stack's s3rver does (scripts/s3rver-like-s3.ts).
   * Default: true; false gives s3rver as it is, for a diagnostic.
   */
  likeS3?: boolean;
}

/** Starts s3rver on 127.0.0.1 and a free port, in a fresh temporary folder, with `buckets`. */
export async function startS3rver(buckets: string[], directory?: string, opts: S3rverOptions = {}): Promise<LocalS3> {
  const dir = directory ?? mkdtempSync(join(tmpdir(), 's3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  if (opts.likeS3 ?? true) makeS3rverLikeS3(server);
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createS3Client({ endpoint });
  return {
    endpoint,
    port,
    directory: dir,
    client,
    server,
    async stop() {
      client.destroy();
      // Requests a test aborted (an early-stopping compare) are still logged by s3rver when
      // they end; with its logger closed, winston complains on the console after the test,
      // which jest counts as a failure. Its silent logger may as well stay open.
      server.logger.close = () => undefined;
      await server.close();
      if (!directory) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A loopback port with nothing listening: connections to it are refused at once. */
export async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
