import { AsyncLocalStorage } from 'node:async_hooks';
import { S3Client } from '@aws-sdk/client-s3';
import { createS3Client, LOCAL_SYSTEM_ACCESS_KEY } from '../../lib/config';
import type { Deps } from '../../lib/deps';
import type { FailureQueue } from '../../lib/failures';
import { replicateNotification } from '../../lib/replicate';
import type { Store } from '../../lib/stores';
import { startS3rver, type LocalS3 } from '../helpers/s3rver';
import { awaitS3rverWrites, emulateS3Atomicity, EventTap, type S3Notification } from '../helpers/events';
import { makeDeps } from '../helpers/deps';

/*
 * The world a delivery-fault run happens in: an S3-like s3rver, and S3 → Lambda as it really
 * behaves. Every S3 event of a store bucket is delivered to replication after a random delay
 * (most under 2 s, some up to 10 s, times `scale`), 30 % of them twice, in whatever order the
 * delays make; an invocation that throws is invoked again twice, later, as Lambda retries
 * asynchronous invocations, then lands in the failure queue that reconcile replays. The
 * replication Lambda's S3 requests fail at random (before they are sent, or after S3 did the
 * work and the answer was lost), and one store can be taken away for a stretch.
 */

/** mulberry32: a small seeded PRNG, so that a run can be replayed. */
export function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Object.assign(next, {
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    between: (lo: number, hi: number) => lo + next() * (hi - lo),
  });
}
export type Random = ReturnType<typeof random>;

export interface WorldOptions {
  seed: number;
  stores: string[];
  /** Multiplies every delivery delay (1 = S3's own: most under 2 s, some up to 10 s). */
  scale: number;
  /** Share of events delivered twice. */
  duplicateShare: number;
  /** Chance that one S3 request of the replication Lambda fails. */
  faultRate: number;
  /** Lambda's async retries, ms after the failed attempt (1 and 2 minutes on AWS). */
  retryDelaysMs: number[];
}

/** One thing that happened to an event on its way: the schedule printed for a replay. */
export interface Delivery {
  seq: number;
  what: string;
  delayMs: number;
  attempt: number;
  result?: string;
}

/** One attempt of the replication Lambda: when it began, and which delivery it handled. */
export interface Invocation {
  began: number;
  delivery: number;
  attempt: number;
}

export interface World {
  s3: LocalS3;
  /** The users' client: no injected faults, but a store that is down refuses them too. */
  users: S3Client;
  stores: Store[];
  /** Deps of the API Lambda (users' writes and deletes). */
  api: Deps;
  /** Deps of the replication and reconcile Lambdas: their requests fail at random. */
  lambda: Deps;
  tap: EventTap;
  deliveries: Delivery[];
  failed: { notification: unknown; error: string }[];
  /** Lets the failure queue show every message again, as SQS does once visibility ends. */
  unhideFailures(): void;
  /** Called with the request id of every request the users' client got an answer to. */
  onAnswered(fn: (requestId: string) => void): void;
  /** The replication invocation that sent request `requestId` (undefined: not one of replication's). */
  invocationOf(requestId: string): Invocation | undefined;
  /** Takes `store` away (every request to its bucket fails) until `back()`. */
  takeDown(store: string): () => void;
  /** Resolves once no delivery is pending or running. */
  quiet(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** What a network failure looks like to the SDK: no response, no status. */
const networkError = () => Object.assign(new Error('socket hang up (injected)'), { name: 'TimeoutError', $metadata: {} });

export async function startWorld(opts: WorldOptions): Promise<World> {
  const rnd = random(opts.seed ^ 0x5eed);
  const s3 = await startS3rver([...opts.stores, 'control']);
  awaitS3rverWrites(s3);
  emulateS3Atomicity(s3);
  const down = new Set<string>();

  // Which invocation sent each of replication's requests, by S3's request id: its delivery,
  // attempt and start.
  // Recorded where S3 answered, also when the answer is then lost: S3 did the work all the same.
  const invocation = new AsyncLocalStorage<Invocation>();
  const invocations = new Map<string, Invocation>();
  // The system's clients sign with its own key, so S3 names it in their events; users sign with theirs.
  const client = (faults: boolean, system: boolean) => {
    const c = createS3Client({ endpoint: s3.endpoint, system });
    c.middlewareStack.add(
      (next, context) => async (args) => {
        const bucket = ((context as { commandInput?: { Bucket?: string } }).commandInput?.Bucket ?? (args.input as { Bucket?: string }).Bucket) || '';
        if (down.has(bucket)) throw networkError();
        const lost = faults && rnd() < opts.faultRate;
        if (lost && rnd() < 0.5) throw networkError(); // never sent
        const out = await next(args);
        const id = (out.output as { $metadata?: { requestId?: string } }).$metadata?.requestId;
        const began = invocation.getStore();
        if (faults && id && began !== undefined) invocations.set(id, began);
        if (lost) throw networkError(); // done, but the answer is lost
        return out;
        void context;
      },
      // After the SDK's retry middleware, as a network fault would be: retried like one.
      { step: 'finalizeRequest', priority: 'low', name: 'injectFaults' },
    );
    return c;
  };
  const users = client(false, false);
  // The API function's: no injected faults (a request's outcome is what its caller is told).
  const apiClient = client(false, true);
  // Which request caused an event: S3's request id is in both (scripts/s3rver-like-s3.ts).
  let onAnswered: ((requestId: string) => void) | undefined;
  for (const c of [users, apiClient]) {
    c.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        const id = (out.output as { $metadata?: { requestId?: string } }).$metadata?.requestId;
        if (id) onAnswered?.(id);
        return out;
      },
      { step: 'initialize', name: 'requestIds' },
    );
  }
  const lambdaClient = client(true, true);
  const storesOf = (c: S3Client): Store[] => opts.stores.map((name) => ({ name, bucket: name, s3: c, flavor: 's3rver' }));
  const failed: World['failed'] = [];
  // Like SQS: a message received is hidden until removed or until the next reconcile run.
  const hidden = new Set<string>();
  const queue: FailureQueue & { items: Map<string, unknown>; unhide(): void } = {
    items: new Map(),
    unhide: () => hidden.clear(),
    async receive(max) {
      const visible = [...queue.items].filter(([id]) => !hidden.has(id)).slice(0, max);
      for (const [id] of visible) hidden.add(id);
      return visible.map(([id, notification]) => ({ id, notification }));
    },
    async remove(id) {
      queue.items.delete(id);
    },
  };
  const systemPrincipals = [`AWS:${LOCAL_SYSTEM_ACCESS_KEY}`];
  const api = makeDeps(storesOf(apiClient), { control: { bucket: 'control', s3: apiClient }, systemPrincipals });
  const lambda = makeDeps(storesOf(lambdaClient), { control: { bucket: 'control', s3: lambdaClient }, failures: queue, eventMaxAgeMs: 0, systemPrincipals });
  const tap = new EventTap(s3);
  const deliveries: Delivery[] = [];
  let running = 0;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!stopped) fn();
    }, ms);
    timers.add(t);
  };

  const invoke = (n: S3Notification, d: Delivery, attempt: number) => {
    running++;
    invocation
      .run({ began: Date.now(), delivery: d.seq, attempt }, () => replicateNotification(lambda, n, { pause: (k) => new Promise((r) => setTimeout(r, 10 * k)) }))
      .then(
        () => void (d.result = attempt === 1 ? 'ok' : `ok on attempt ${attempt}`),
        (err: Error) => {
          if (attempt <= opts.retryDelaysMs.length) {
            later(opts.retryDelaysMs[attempt - 1]!, () => invoke(n, d, attempt + 1));
            return;
          }
          d.result = `failed: ${err.message}`;
          failed.push({ notification: n, error: err.message });
          queue.items.set(`${d.seq}-${attempt}`, n);
        },
      )
      .finally(() => running--);
  };
  let seq = 0;
  tap.onEvent((n) => {
    const r = n.Records[0]!;
    if (!opts.stores.includes(r.s3.bucket.name)) return; // the control bucket has no notifications
    const copies = rnd() < opts.duplicateShare ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const delayMs = (rnd() < 0.8 ? rnd.between(0, 2000) : rnd.between(2000, 10_000)) * opts.scale;
      const d: Delivery = { seq: ++seq, what: `${r.eventName} ${r.s3.bucket.name}/${r.s3.object.key} ${r.s3.object.sequencer ?? ''}${c ? ' (duplicate)' : ''}`, delayMs: Math.round(delayMs), attempt: 1 };
      deliveries.push(d);
      later(delayMs, () => invoke(n, d, 1));
    }
  });

  return {
    s3,
    users,
    stores: storesOf(users),
    api,
    lambda,
    tap,
    deliveries,
    failed,
    unhideFailures: () => queue.unhide(),
    onAnswered: (fn) => void (onAnswered = fn),
    invocationOf: (id) => invocations.get(id),
    takeDown(store) {
      down.add(store);
      return () => down.delete(store);
    },
    async quiet(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while (running > 0 || timers.size > 0) {
        if (Date.now() > deadline) throw new Error(`deliveries still pending after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      const deadline = Date.now() + 30_000;
      timers.clear();
      while (running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      users.destroy();
      apiClient.destroy();
      lambdaClient.destroy();
      await s3.stop();
    },
  };
}
