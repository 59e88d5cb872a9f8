import { CopyObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { StoreUnavailableError } from '../../lib/errors';
import { QueueUnavailableError, replayFailures, sqsFailureQueue, type FailedInvocation, type FailureQueue } from '../../lib/failures';
import type { Store } from '../../lib/stores';
import type { Tombstone } from '../../lib/tombstones';
import { makeDeps } from '../helpers/deps';
import { T, testClient, useConditionalS3 } from '../helpers/conditional-s3';
import { networkError, s3Error } from '../helpers/mock-s3';

/*
 * The replication failure queue: Lambda's on-failure records in SQS (canned answers), and their
 * replay through replication against a ConditionalS3.
 */

const sqs = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } });
const sqsMock = mockClient(sqs);
const URL = 'https://sqs.us-east-1.amazonaws.com/123456789012/failures';
beforeEach(() => sqsMock.reset());

const removedEvent = (bucket: string, key: string, time = T) => ({
  Records: [{ eventName: 'ObjectRemoved:Delete', eventTime: new Date(time).toISOString(), s3: { bucket: { name: bucket }, object: { key, sequencer: '0A' } } }],
});

describe('sqsFailureQueue', () => {
  it("reads each message's S3 notification from Lambda's failure record, hiding it while replayed", async () => {
    sqsMock.on(ReceiveMessageCommand).resolves({
      Messages: [
        { ReceiptHandle: 'r1', Body: JSON.stringify({ requestContext: { condition: 'RetriesExhausted' }, requestPayload: removedEvent('bucket-1', 'a.txt') }) },
        { ReceiptHandle: 'r2', Body: JSON.stringify({ Records: [] }) },
        { ReceiptHandle: 'r3', Body: 'not json' },
      ],
    });
    expect(await sqsFailureQueue(sqs, URL).receive(25)).toEqual([
      { id: 'r1', notification: removedEvent('bucket-1', 'a.txt') },
      { id: 'r2', notification: { Records: [] } },
      { id: 'r3', notification: null },
    ]);
    expect(sqsMock).toHaveReceivedCommandWith(ReceiveMessageCommand, { QueueUrl: URL, MaxNumberOfMessages: 10, VisibilityTimeout: 300, WaitTimeSeconds: 0 });
  });

  it('answers an empty queue with nothing and asks for no more than it was told', async () => {
    sqsMock.on(ReceiveMessageCommand).resolves({});
    expect(await sqsFailureQueue(sqs, URL).receive(3)).toEqual([]);
    expect(sqsMock).toHaveReceivedCommandWith(ReceiveMessageCommand, { MaxNumberOfMessages: 3 });
  });

  it('removes a message by its receipt', async () => {
    sqsMock.on(DeleteMessageCommand).resolves({});
    await sqsFailureQueue(sqs, URL).remove('r1');
    expect(sqsMock).toHaveReceivedCommandWith(DeleteMessageCommand, { QueueUrl: URL, ReceiptHandle: 'r1' });
  });

  it('answers a queue that fails with QueueUnavailableError, a 503', async () => {
    sqsMock.on(ReceiveMessageCommand).rejects(networkError());
    sqsMock.on(DeleteMessageCommand).rejects(s3Error('AccessDenied', 403));
    const q = sqsFailureQueue(sqs, URL);
    await expect(q.receive(1)).rejects.toEqual(expect.objectContaining({ name: 'QueueUnavailableError', status: 503 }));
    await expect(q.remove('r1')).rejects.toThrow(QueueUnavailableError);
  });

  it('says what failed, as the API answers it, and keeps what SQS said as the cause', async () => {
    const cause = networkError();
    sqsMock.on(ReceiveMessageCommand).rejects(cause);
    sqsMock.on(DeleteMessageCommand).rejects(cause);
    const q = sqsFailureQueue(sqs, URL);
    for (const err of [await q.receive(1).catch((e: unknown) => e), await q.remove('r1').catch((e: unknown) => e)]) {
      expect(err).toMatchObject({ code: 'Unavailable', message: 'the queue of failed replication events did not answer; nothing was replayed or applied, try again' });
      expect((err as Error).cause).toBe(cause);
    }
  });
});

describe('replayFailures', () => {
  const client = testClient();
  const { fake, s3mock } = useConditionalS3(client);
  const stores: Store[] = [1, 2].map((n) => ({ name: `server${n}`, bucket: `bucket-${n}`, s3: client }));
  const deps = (failures?: FailureQueue) => makeDeps(stores, { control: { bucket: 'control', s3: client }, flavor: 'aws', ...(failures ? { failures } : {}) });
  const createdEvent = (bucket: string, key: string) => ({
    Records: [{ eventName: 'ObjectCreated:Put', eventTime: new Date(T).toISOString(), s3: { bucket: { name: bucket }, object: { key, sequencer: '0B' } } }],
  });

  /** Hands out its items once each, `batch` at a time; forgets those removed. */
  class MemoryQueue implements FailureQueue {
    private given = 0;
    readonly removed: string[] = [];
    constructor(private readonly items: FailedInvocation[], private readonly endless = false) {}
    async receive(max: number) {
      if (this.endless) return Array.from({ length: max }, () => ({ id: `m${this.given++}`, notification: null }));
      const out = this.items.slice(this.given, this.given + max);
      this.given += out.length;
      return out;
    }
    async remove(id: string) {
      this.removed.push(id);
    }
  }

  /** A queue of `n` empty notifications whose every receive takes `ms` on the (fake) clock. */
  class SlowQueue extends MemoryQueue {
    receives = 0;
    constructor(n: number, private readonly ms: number) {
      super(Array.from({ length: n }, (_, i) => ({ id: `m${i}`, notification: null })));
    }
    override async receive(max: number) {
      this.receives++;
      jest.setSystemTime(Date.now() + this.ms);
      return super.receive(max);
    }
  }

  it('replays each notification through replication and removes those that now succeed', async () => {
    fake.stamped('bucket-2', 'a.txt', 'x', { mtime: T - 5000 });
    const queue = new MemoryQueue([
      { id: 'm1', notification: removedEvent('bucket-1', 'a.txt') },
      { id: 'm2', notification: null },
    ]);
    expect(await replayFailures(makeDeps(stores, { control: { bucket: 'control', s3: client }, flavor: 'aws', failures: queue }))).toEqual({ replayed: 2, failed: 0 });
    expect(queue.removed).toEqual(['m1', 'm2']);
    expect(fake.has('bucket-2', 'a.txt')).toBeUndefined();
    expect(fake.records<Tombstone>('tombstones/')).toEqual([expect.objectContaining({ key: 'a.txt', deletedAt: T })]);
  });

  it('stops after 1000 replays, so one reconcile stays within its time', async () => {
    const queue = new MemoryQueue([], true);
    expect(await replayFailures(makeDeps(stores, { control: { bucket: 'control', s3: client }, failures: queue }))).toEqual({ replayed: 1000, failed: 0 });
    expect(queue.removed).toHaveLength(1000);
  });

  it('counts failed replays toward the 1000 too', async () => {
    const queue = new MemoryQueue([], true);
    queue.remove = async () => {
      throw new Error('the queue forgot it');
    };
    expect(await replayFailures(deps(queue))).toEqual({ replayed: 0, failed: 1000 });
  });

  it('replays a message once, though the queue hands it out again when its visibility ends', async () => {
    const again = { id: 'm1', notification: null };
    const queue = new MemoryQueue([]);
    queue.receive = async () => [again];
    expect(await replayFailures(deps(queue))).toEqual({ replayed: 1, failed: 0 });
  });

  it('throws what is not an Error (a bug, not a failed event) instead of counting it', async () => {
    const queue = new MemoryQueue([{ id: 'm1', notification: null }]);
    queue.remove = () => Promise.reject('not an Error');
    await expect(replayFailures(deps(queue))).rejects.toBe('not an Error');
  });

  it('has nothing to do without a queue (the local stack has none), asking no store anything', async () => {
    expect(await replayFailures(deps())).toEqual({ replayed: 0, failed: 0 });
    expect(s3mock.calls()).toHaveLength(0);
  });

  it('tries a notification once: one that fails again stays queued, without pausing for retries', async () => {
    fake.stamped('bucket-1', 'b.txt', 'y', { mtime: T });
    fake.fail('bucket-2', networkError, { command: 'CopyObject' });
    const queue = new MemoryQueue([{ id: 'again', notification: createdEvent('bucket-1', 'b.txt') }, { id: 'fine', notification: null }]);
    expect(await replayFailures(deps(queue))).toEqual({ replayed: 1, failed: 1 });
    expect(s3mock.commandCalls(CopyObjectCommand)).toHaveLength(1);
    expect(queue.removed).toEqual(['fine']);
  });

  describe('within a time budget', () => {
    beforeEach(() => jest.useFakeTimers({ now: T, doNotFake: ['nextTick', 'setImmediate'] }));
    afterEach(() => jest.useRealTimers());

    it('receives nothing with a budget of 0', async () => {
      const queue = new SlowQueue(30, 1000);
      expect(await replayFailures(deps(queue), 0)).toEqual({ replayed: 0, failed: 0 });
      expect(queue.receives).toBe(0);
    });

    it('starts no batch once the budget is spent: exactly at the deadline it stops', async () => {
      const queue = new SlowQueue(50, 1000);
      expect(await replayFailures(deps(queue), 2000)).toEqual({ replayed: 20, failed: 0 });
      expect(queue.receives).toBe(2);
      expect(queue.removed).toHaveLength(20);
    });

    it('starts one more batch while a millisecond of the budget is left', async () => {
      const queue = new SlowQueue(50, 1000);
      expect(await replayFailures(deps(queue), 2001)).toEqual({ replayed: 30, failed: 0 });
      expect(queue.receives).toBe(3);
    });

    it('has no limit but the 1000 replays without a budget', async () => {
      const queue = new SlowQueue(1500, 60_000);
      expect(await replayFailures(deps(queue))).toEqual({ replayed: 1000, failed: 0 });
    });
  });
});
