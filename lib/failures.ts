import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Deps } from './deps';
import { DfsError } from './errors';
import { replicateNotification } from './replicate';

/*
 * Replication events that failed every attempt (the in-process ones, then Lambda's two async
 * retries, or that outlived the event age) land in the replicate function's on-failure
 * destination, an SQS queue. Their S3 notifications are not lost: reconcile replays them before
 * it plans, so a delete whose event failed still becomes a tombstone instead of being undone.
 */

/**
 * The failure queue did not answer: nothing is replayed, and a reconcile that would plan without
 * the deletes in it does not run (503).
 */
export class QueueUnavailableError extends DfsError {
  readonly status = 503;
  readonly code = 'Unavailable';
  constructor(options?: { cause?: unknown }) {
    super('the queue of failed replication events did not answer; nothing was replayed or applied, try again', options);
  }
}

/** One failed invocation: its queue receipt and the S3 notification it carried. */
export interface FailedInvocation {
  id: string;
  notification: unknown;
}

export interface FailureQueue {
  /** Up to `max` failed invocations, hidden from other readers while they are replayed. */
  receive(max: number): Promise<FailedInvocation[]>;
  /** Forgets one, once replayed. */
  remove(id: string): Promise<void>;
}

/** Replays at most this many per reconcile, so one run stays within its time limit. */
const MAX_REPLAYS = 1000;

/**
 * Replays queued notifications through replication, oldest first as the queue gives them, until
 * the queue is empty or `budgetMs` is spent; each one that now succeeds is removed, the others
 * stay for the next run. Nothing to do without a queue (the local stack has none).
 */
export async function replayFailures(deps: Deps, budgetMs = Infinity): Promise<{ replayed: number; failed: number }> {
  const queue = deps.failures;
  let replayed = 0;
  let failed = 0;
  if (!queue) return { replayed, failed };
  const deadline = Date.now() + budgetMs;
  const seen = new Set<string>();
  while (replayed + failed < MAX_REPLAYS && Date.now() < deadline) {
    // A message received before shows again once its visibility ends: it had its turn.
    const batch = (await queue.receive(10)).filter((f) => !seen.has(f.id));
    if (batch.length === 0) break;
    for (const f of batch) {
      seen.add(f.id);
      try {
        // One attempt: an event that still fails stays queued for the next run.
        await replicateNotification(deps, f.notification, { attempts: 1 });
        await queue.remove(f.id);
        replayed++;
      } catch (err) {
        failed++;
        if (!(err instanceof Error)) throw err;
      }
    }
  }
  return { replayed, failed };
}

/**
 * The SQS queue of the on-failure destination. Each message is Lambda's failure record, whose
 * `requestPayload` is the original S3 notification.
 */
export function sqsFailureQueue(sqs: SQSClient, url: string): FailureQueue {
  return {
    async receive(max) {
      try {
        const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: Math.min(10, max), VisibilityTimeout: 300, WaitTimeSeconds: 0 }));
        return (res.Messages ?? []).flatMap((m): FailedInvocation[] => {
          try {
            const record = JSON.parse(m.Body ?? '') as { requestPayload?: unknown };
            return [{ id: m.ReceiptHandle!, notification: record.requestPayload ?? record }];
          } catch {
            return [{ id: m.ReceiptHandle!, notification: null }];
          }
        });
      } catch (err) {
        throw new QueueUnavailableError({ cause: err });
      }
    },
    async remove(id) {
      try {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: id }));
      } catch (err) {
        throw new QueueUnavailableError({ cause: err });
      }
    },
  };
}
