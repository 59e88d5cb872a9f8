/**
 * The S3 every benchmark of a run shares: s3rver in a child process on 127.0.0.1 and a free
 * port, in a fresh temporary folder, stopped (and its folder removed) at the end even when a
 * benchmark fails or the run is interrupted. Plus the ways the benchmarks fill it and reach it.
 */
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createS3Client } from '../lib/config';
import { startChild } from './child';
import { MiB } from './harness';

export interface BenchS3 {
  endpoint: string;
  /** s3rver's folder: `<directory>/<bucket>/…`. */
  directory: string;
  /** A client configured as the stack configures its own (lib/config createS3Client). */
  client: S3Client;
  createBuckets(names: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** Starts s3rver in `directory` (default: a fresh temporary folder, removed on stop). */
export async function startBenchS3(directory?: string): Promise<BenchS3> {
  const dir = directory ?? mkdtempSync(join(tmpdir(), 's3-dfs-bench-'));
  const removeDir = () => {
    if (!directory) rmSync(dir, { recursive: true, force: true });
  };
  let child: ChildProcess;
  let port: number;
  try {
    const started = await startChild<{ port: number }>('s3rver', [dir]);
    child = started.child;
    port = started.message.port;
  } catch (err) {
    removeDir();
    throw err;
  }
  // If the bench exits without calling stop (an uncaught error, process.exit), s3rver goes too.
  const killOnExit = () => {
    child.kill('SIGKILL');
    removeDir();
  };
  process.once('exit', killOnExit);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = createS3Client({ endpoint });
  const created = new Set<string>();
  let stopping: Promise<void> | undefined;
  return {
    endpoint,
    directory: dir,
    client,
    async createBuckets(names) {
      for (const name of names.filter((n) => !created.has(n))) {
        await client.send(new CreateBucketCommand({ Bucket: name }));
        created.add(name);
      }
    },
    stop: () =>
      (stopping ??= (async () => {
        process.off('exit', killOnExit);
        client.destroy();
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((r) => child.once('exit', () => r()));
          child.kill('SIGTERM');
          const late = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(late);
        }
        removeDir();
      })()),
  };
}

/** PUTs many small objects, `concurrency` at a time. */
export async function putMany(
  client: S3Client,
  items: Iterable<{ bucket: string; key: string; body: Buffer | string; mtime?: number }>,
  concurrency = 48,
): Promise<number> {
  const it = items[Symbol.iterator]();
  let count = 0;
  const worker = async () => {
    for (let n = it.next(); !n.done; n = it.next()) {
      const { bucket, key, body, mtime } = n.value;
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(mtime ? { Metadata: { mtime: String(mtime) } } : {}) }),
      );
      count++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return count;
}

/**
 * `size` bytes of incompressible content, generated 1 MiB at a time: the same `seed` block
 * gives the same bytes, so two calls make equal copies without holding either in memory.
 */
export function contentStream(size: number, seed: Buffer): Readable {
  async function* chunks() {
    for (let offset = 0, n = 0; offset < size; offset += MiB, n++) {
      const chunk = Buffer.from(seed.subarray(0, Math.min(MiB, size - offset)));
      chunk.writeUInt32BE(n, 0); // no two chunks alike
      yield chunk;
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

export const newSeed = () => randomBytes(MiB);

/** Streams `size` bytes from contentStream into one object (one PUT, never all in memory). */
export async function putStreamed(client: S3Client, bucket: string, key: string, size: number, seed: Buffer): Promise<void> {
  await client.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: contentStream(size, seed), ContentLength: size }),
  );
}

export interface DelayedS3 {
  /** The bench's S3 behind the latency proxy. */
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * The bench's S3 seen across a network: bench/latency-proxy.ts in a child process between
 * the caller and s3rver, holding the first byte of every request for `rttMs`. Stopped by
 * `stop()`, or with the bench when it exits.
 */
export async function behindLatency(s3: BenchS3, rttMs: number): Promise<DelayedS3> {
  const target = new URL(s3.endpoint);
  const { child, message } = await startChild<{ port: number }>('latency-proxy', [target.port, String(rttMs)]);
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  return {
    endpoint: `http://127.0.0.1:${message.port}`,
    async stop() {
      process.off('exit', kill);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
