/**
 * Replication latency on the local stack. One object at a time is PUT on server1 straight into
 * its bucket (as any S3 client would: its event stamps it, then copies it); the time from the
 * PUT's answer until server2 serves the same bytes is the latency. p50 and p99 over 200 writes.
 * Issue 4's goal was p99 ≤ 1 s; issue 7's, with its bookkeeping, p99 ≤ 250 ms and p50 ≤ 50 ms.
 */
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { fmtMs, KiB, nowMs, quantile, skipped, type Benchmark } from '../harness';
import { missingStack, startBenchStack } from '../stack';

const GOAL_P99_MS = 250;
const GOAL_P50_MS = 50;
const POLL_MS = 10;
const GIVE_UP_MS = 10_000;

export const replication: Benchmark = {
  name: 'replication',
  issue: 7,
  title: `PUT on server1 → readable on server2 through the local stack (goal p99 ≤ ${GOAL_P99_MS} ms, p50 ≤ ${GOAL_P50_MS} ms)`,
  async run({ sizes, log }) {
    const what = `replication latency, ${sizes.replicationN} writes of 1 KiB`;
    const why = missingStack('replicate');
    if (why) return [skipped('replication', `p99 ${what}`, `≤ ${fmtMs(GOAL_P99_MS)}`, why)];
    log('replication: starting the local stack');
    const stack = await startBenchStack();
    const [from, to] = stack.buckets as [string, string];
    const latencies: number[] = [];
    let lost = 0;
    try {
      for (let i = 0; i < sizes.replicationN; i++) {
        const key = `bench/replication/${i}.bin`;
        const put = await stack.client.send(
          new PutObjectCommand({ Bucket: from, Key: key, Body: randomBytes(KiB), Metadata: { mtime: String(Date.now()) } }),
        );
        const t0 = nowMs();
        let seen = false;
        while (nowMs() - t0 < GIVE_UP_MS) {
          const h = await stack.client.send(new HeadObjectCommand({ Bucket: to, Key: key })).catch(() => undefined);
          // The same bytes: a copy onto a free key keeps the single-part MD5 ETag.
          if (h?.ETag === put.ETag) {
            seen = true;
            break;
          }
          await new Promise((r) => setTimeout(r, POLL_MS));
        }
        if (seen) latencies.push(nowMs() - t0);
        else lost++;
        if ((i + 1) % 50 === 0) log(`replication: ${i + 1}/${sizes.replicationN}`);
      }
    } finally {
      await stack.stop();
    }
    // A write never seen counts as slower than any seen one.
    const all = [...latencies, ...Array<number>(lost).fill(Infinity)];
    const p50 = quantile(all, 0.5);
    const p99 = quantile(all, 0.99);
    const note = `${lost} of ${sizes.replicationN} not replicated within ${fmtMs(GIVE_UP_MS)}; polled every ${POLL_MS} ms from the PUT's answer`;
    return [
      {
        bench: 'replication',
        metric: `p99 ${what}`,
        value: Number.isFinite(p99) ? fmtMs(p99) : `> ${fmtMs(GIVE_UP_MS)}`,
        goal: `≤ ${fmtMs(GOAL_P99_MS)}`,
        verdict: p99 <= GOAL_P99_MS ? 'pass' : 'miss',
        note,
      },
      {
        bench: 'replication',
        metric: `p50 ${what}`,
        value: Number.isFinite(p50) ? fmtMs(p50) : `> ${fmtMs(GIVE_UP_MS)}`,
        goal: `≤ ${fmtMs(GOAL_P50_MS)}`,
        verdict: p50 <= GOAL_P50_MS ? 'pass' : 'miss',
        note,
      },
    ];
  },
};
