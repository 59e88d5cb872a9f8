/**
 * Issue 7: what replication's bookkeeping costs, in S3 requests per event. An S3-like s3rver in
 * this process emits the events; replication (lib/replicate.ts) handles each one as the Lambda
 * would, through a client that counts its requests by command and bucket. Four ways a file
 * changes on two stores, each to quiet (every event, and the events those cause, handled once).
 */
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createS3Client, loadConfig } from '../../lib/config';
import { createDeps } from '../../lib/deps';
import { replicateNotification } from '../../lib/replicate';
import { deleteFile } from '../../lib/delete';
import { newWriteId, writeMetadata } from '../../lib/stamps';
import { makeS3rverLikeS3 } from '../../scripts/s3rver-like-s3';
import type { Benchmark, Row } from '../harness';

// s3rver ships no types.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const S3rver = require('s3rver');

interface Notification {
  Records: { s3: { bucket: { name: string } } }[];
}

/** A client that counts each request it sends as `Command bucket-kind`. */
function countingClient(endpoint: string, counts: Map<string, number>): S3Client {
  const client = createS3Client({ endpoint });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const bucket = (args.input as { Bucket?: string }).Bucket ?? '';
      const what = `${context.commandName?.replace(/Command$/, '')} ${bucket === 'control' ? 'control' : 'store'}`;
      counts.set(what, (counts.get(what) ?? 0) + 1);
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  return client;
}

export const replicationCost: Benchmark = {
  name: 'replication-cost',
  issue: 7,
  title: 'S3 requests replication sends per change, events included (two stores)',
  async run({ log }) {
    const dir = mkdtempSync(join(tmpdir(), 's3-dfs-cost-'));
    const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: ['server1', 'server2', 'control'].map((name) => ({ name })) });
    makeS3rverLikeS3(server);
    const { port } = (await server.run()) as { port: number };
    const endpoint = `http://127.0.0.1:${port}`;
    const user = createS3Client({ endpoint });
    const counts = new Map<string, number>();
    const lambda = countingClient(endpoint, counts);
    const config = loadConfig({ DFS_STORES: 'server1=server1,server2=server2', DFS_CONTROL_BUCKET: 'control', DFS_S3_ENDPOINT: endpoint, DFS_S3_FLAVOR: 's3rver' });
    const built = createDeps(config);
    const deps = { ...built, stores: built.stores.map((s) => ({ ...s, s3: lambda })), control: { bucket: 'control', s3: lambda } };
    const queue: Notification[] = [];
    server.on('event', (e: Notification) => {
      if (e.Records[0]!.s3.bucket.name !== 'control') queue.push(e);
    });
    /** Handles every pending event, and those they cause; returns requests and events. */
    const quiet = async () => {
      counts.clear();
      let events = 0;
      for (let e = queue.shift(); e; e = queue.shift()) {
        events++;
        await replicateNotification(deps, e, { pause: async () => undefined });
      }
      const requests = [...counts.values()].reduce((a, b) => a + b, 0);
      return { events, requests, detail: [...counts].sort().map(([k, v]) => `${v} ${k}`).join(', ') };
    };
    const rows: Row[] = [];
    const row = (what: string, r: Awaited<ReturnType<typeof quiet>>) =>
      rows.push({ bench: 'replication-cost', metric: `${what}: S3 requests for its ${r.events} event(s)`, value: String(r.requests), goal: '-', verdict: 'info', note: r.detail });
    try {
      const N = 20;
      let api = { events: 0, requests: 0, detail: '' };
      for (let i = 0; i < N; i++) {
        const metadata = writeMetadata({ id: newWriteId(), madeMs: Date.now(), who: 'bench' }, Date.now());
        await user.send(new PutObjectCommand({ Bucket: 'server1', Key: `api/${i}`, Body: 'x'.repeat(1024), Metadata: metadata }));
        const r = await quiet();
        api = { events: r.events, requests: api.requests + r.requests, detail: r.detail };
      }
      row('a dfs write on server1 (its event, then its copy\'s)', { ...api, requests: api.requests / N });
      let plain = { events: 0, requests: 0, detail: '' };
      for (let i = 0; i < N; i++) {
        await user.send(new PutObjectCommand({ Bucket: 'server1', Key: `plain/${i}`, Body: 'y'.repeat(1024) }));
        const r = await quiet();
        plain = { events: r.events, requests: plain.requests + r.requests, detail: r.detail };
      }
      row('a write straight into server1 (stamped by its event)', { ...plain, requests: plain.requests / N });
      let removed = { events: 0, requests: 0, detail: '' };
      for (let i = 0; i < N; i++) {
        await user.send(new DeleteObjectCommand({ Bucket: 'server1', Key: `api/${i}` }));
        const r = await quiet();
        removed = { events: r.events, requests: removed.requests + r.requests, detail: r.detail };
      }
      row('a delete straight in server1 (its event, then its echo)', { ...removed, requests: removed.requests / N });
      let rm = { events: 0, requests: 0, detail: '' };
      for (let i = 0; i < N; i++) {
        counts.clear();
        await deleteFile(deps, `plain/${i}`, 'bench');
        const byApi = [...counts.values()].reduce((a, b) => a + b, 0);
        const r = await quiet();
        rm = { events: r.events, requests: rm.requests + byApi + r.requests, detail: `the API's then the events': ${r.detail}` };
      }
      row('dfs rm (the API, then both echoes)', { ...rm, requests: rm.requests / N });
      log(`replication-cost: ${rows.length} rows`);
      return rows;
    } finally {
      user.destroy();
      lambda.destroy();
      server.logger.close = () => undefined;
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
