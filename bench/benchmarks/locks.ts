/**
 * Issue 9: what locks cost, through the local stack (sls offline + s3rver).
 *
 *   round trip   POST /locks/{key} then DELETE /locks/{key} (nothing held), one after the other,
 *                p50/p99 of each, against the floor: one conditional PutObject (If-None-Match: *)
 *                straight into the same s3rver, the request a lock is made of.
 *   drain        1,000 updates of 1 KiB held for a lock (PUT /files by another token while the key
 *                is locked at server1), then one DELETE /locks: updates applied per second until
 *                the lock is gone (a drain past a request's budget goes on in a new invocation,
 *                polled by GET /locks), against the floor of as many conditional 1 KiB PutObjects
 *                straight into the control bucket (no S3 events there).
 */
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { fmtMs, fmtRatio, KiB, median, nowMs, quantile, skipped, type Benchmark, type Row } from '../harness';
import { missingStack, startBenchStack, type BenchStack } from '../stack';

const KEY = 'bench/locked.bin';
const GIVE_UP_MS = 10 * 60_000;

async function call(stack: BenchStack, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' } : {}) },
    ...(body !== undefined ? { body: body instanceof Uint8Array ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 200)}`);
  return { status: res.status, json };
}

export const locks: Benchmark = {
  name: 'locks',
  issue: 9,
  title: 'lock/unlock round trip and the drain of 1,000 held 1 KiB updates through the local stack, against direct conditional PUTs',
  async run({ sizes, log }) {
    const n = Math.min(1000, sizes.replicationN * 5);
    const trips = Math.max(50, Math.floor(sizes.replicationN / 2));
    const why = missingStack();
    if (why) return [skipped('locks', `drain of ${n} held updates`, '-', why)];
    log('locks: starting the local stack');
    const stack = await startBenchStack();
    const rows: Row[] = [];
    const lockPath = `/locks/${KEY}?store=server1`;
    try {
      await call(stack, stack.token, 'PUT', `/files/${KEY}?to=all`, randomBytes(KiB));
      const other = (await call(stack, stack.token, 'POST', '/tokens', { name: 'bench-other', scope: 'write' })).json.token as string;

      log(`locks: ${trips} lock/unlock round trips`);
      const lockMs: number[] = [];
      const unlockMs: number[] = [];
      for (let i = 0; i < trips; i++) {
        let t0 = nowMs();
        await call(stack, stack.token, 'POST', lockPath, {});
        lockMs.push(nowMs() - t0);
        t0 = nowMs();
        await call(stack, stack.token, 'DELETE', lockPath);
        unlockMs.push(nowMs() - t0);
      }
      const putMs: number[] = [];
      for (let i = 0; i < trips; i++) {
        const t0 = nowMs();
        await stack.client.send(new PutObjectCommand({ Bucket: stack.controlBucket, Key: `bench/lock-floor/${i}`, Body: '{}', IfNoneMatch: '*' }));
        putMs.push(nowMs() - t0);
      }
      const floor50 = median(putMs);
      const floor99 = quantile(putMs, 0.99);
      for (const [what, ms] of [['lock (POST /locks)', lockMs], ['unlock, nothing held (DELETE /locks)', unlockMs]] as const) {
        rows.push({ bench: 'locks', metric: `${what} p50, ${trips} round trips`, value: fmtMs(median(ms)), peer: fmtMs(floor50), ratio: median(ms) / floor50, goal: '-', verdict: 'info', note: 'peer: one conditional PutObject straight into s3rver' });
        rows.push({ bench: 'locks', metric: `${what} p99, ${trips} round trips`, value: fmtMs(quantile(ms, 0.99)), peer: fmtMs(floor99), ratio: quantile(ms, 0.99) / floor99, goal: '-', verdict: 'info' });
      }

      log(`locks: holding ${n} updates`);
      await call(stack, stack.token, 'POST', lockPath, { ttl: 3600 });
      const holdMs: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = nowMs();
        const a = await call(stack, other, 'PUT', `/files/${KEY}?to=server1`, randomBytes(KiB));
        holdMs.push(nowMs() - t0);
        if (!a.json.results?.[0]?.held) throw new Error(`update ${i} was not held: ${JSON.stringify(a.json)}`);
      }
      log('locks: draining');
      const t0 = nowMs();
      const first = await call(stack, stack.token, 'DELETE', lockPath);
      let continued = false;
      if (first.status === 202) {
        continued = true;
        for (;;) {
          if (nowMs() - t0 > GIVE_UP_MS) throw new Error('the drain did not finish in 10 minutes');
          // A loaded machine: a poll the stack answers 503 is polled again.
          const polled = await call(stack, stack.token, 'GET', '/locks').catch((err: Error) => (/: 503 /.test(err.message) ? undefined : Promise.reject(err)));
          if (polled && !(polled.json.locks as { key: string }[]).some((l) => l.key === KEY)) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const drainMs = nowMs() - t0;
      const floorT0 = nowMs();
      // Into the control bucket, which has no S3 events: the floor is the PUTs alone.
      for (let i = 0; i < n; i++) await stack.client.send(new PutObjectCommand({ Bucket: stack.controlBucket, Key: `bench/drain-floor/${i}`, Body: randomBytes(KiB), IfNoneMatch: '*' }));
      const floorMs = nowMs() - floorT0;
      const rate = (n * 1000) / drainMs;
      const floorRate = (n * 1000) / floorMs;
      rows.push({
        bench: 'locks',
        metric: `drain: ${n} held 1 KiB updates applied, per second`,
        value: `${rate.toFixed(0)}/s`,
        peer: `${floorRate.toFixed(0)}/s`,
        ratio: floorRate / rate,
        goal: '-',
        verdict: 'info',
        note: `${fmtMs(drainMs)} in all${continued ? ', past one request (202, went on in new invocations)' : ''}; peer: as many PutObjects straight in; holding one update (PUT by another user) p50 ${fmtMs(median(holdMs))}`,
      });
      await Promise.all(Array.from({ length: trips }, (_, i) => stack.client.send(new DeleteObjectCommand({ Bucket: stack.controlBucket, Key: `bench/lock-floor/${i}` }))));
      log(`locks: ${rows.length} rows, ratio ${fmtRatio(floorRate / rate)} of the drain floor`);
      return rows;
    } finally {
      await stack.stop();
    }
  },
};
