import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Deps } from './deps';
import { StoreUnavailableError } from './errors';
import { replicateNotification } from './replicate';

/*
 * Replication events that failed every attempt (the in-process ones, then Lambda's two async
 * retries, or that outlived the event age) land in the replicate function's on-failure
 * destination, an SQS queue. Their S3 notifications are not lost: reconcile replays them before
 * it plans, so a delete whose event failed still becomes a tombstone instead of being undone.
 */

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
 * Replays every queued notification through replication, oldest first as the queue gives them;
 * each one that now succeeds is removed, the others stay for the next run.
 */
export async function replayFailures(deps: Deps): Promise<{ replayed: number; failed: number }> {
  const queue = deps.failures!;
  let replayed = 0;
  let failed = 0;
  while (replayed + failed < MAX_REPLAYS) {
    const batch = await queue.receive(10);
    if (batch.length === 0) break;
    for (const f of batch) {
      try {
        await replicateNotification(deps, f.notification);
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
        throw new StoreUnavailableError('failure-queue', { cause: err });
      }
    },
    async remove(id) {
      try {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: id }));
      } catch (err) {
        throw new StoreUnavailableError('failure-queue', { cause: err });
      }
    },
  };
}
