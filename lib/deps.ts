import { SQSClient } from '@aws-sdk/client-sqs';
import type { Config, S3Flavor } from './config';
import { connectStores, type Store } from './stores';
import { createS3Client } from './config';
import type { ControlBucket } from './control';
import { sqsFailureQueue, type FailureQueue } from './failures';

/** Counts what a call cost; the benchmark and tests read it, production leaves it out. */
export interface Meter {
  bodyBytes: number;
}

/** Everything a lib/ function needs from the outside world, built once per cold start. */
export interface Deps {
  stores: Store[];
  control: ControlBucket;
  inlineLimit: number;
  /** Largest body PUT /files takes inline (a Lambda request is capped at 6 MB, base64 included). */
  putInlineLimit: number;
  urlExpirySeconds: number;
  compareChunkBytes: number;
  /** Signs listing cursors so an edited one is refused, not misread; absent: lib/secrets.ts makes one. */
  cursorSecret?: string;
  flavor: S3Flavor;
  /**
   * How long S3 and Lambda may still deliver an event after its write (the replicate function's
   * maximum event age, retries included): until then an unstamped version waits for its event.
   */
  eventMaxAgeMs: number;
  /** Replication events that failed every retry; reconcile replays them. Absent locally. */
  failures?: FailureQueue;
  /** Goes on with an unlock's drain outside this request (the API invokes itself). Absent: the next unlock call, or reconcile, goes on. */
  continueDrain?: (key: string, store: string) => Promise<void>;
  meter?: Meter;
  /** Whose delete events are the system's own (Config.systemPrincipals); empty or absent: told by intents alone. */
  systemPrincipals?: string[];
}

/**
 * Goes on with an unlock by invoking the API function itself, asynchronously, with the direct
 * request of the same unlock (lib/locking.ts): it resumes the drain where this one stopped.
 */
function invokeSelf(functionName: string, endpoint?: string): Deps['continueDrain'] {
  return async (key, store) => {
    const { LambdaClient, InvokeCommand } = await import('@aws-sdk/client-lambda');
    const client = new LambdaClient(endpoint ? { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {});
    try {
      const request = { method: 'DELETE', path: `/locks/${key}`, query: { store, force: '1' } };
      await client.send(new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: new TextEncoder().encode(JSON.stringify(request)) }));
    } finally {
      client.destroy();
    }
  };
}

export function createDeps(config: Config): Deps {
  return {
    stores: connectStores(config),
    control: { bucket: config.controlBucket, s3: createS3Client({ endpoint: config.s3Endpoint, system: true }) },
    inlineLimit: config.inlineLimit,
    putInlineLimit: config.putInlineLimit,
    urlExpirySeconds: config.urlExpirySeconds,
    compareChunkBytes: config.compareChunkBytes,
    ...(config.cursorSecret ? { cursorSecret: config.cursorSecret } : {}),
    flavor: config.flavor,
    eventMaxAgeMs: config.eventMaxAgeMs,
    systemPrincipals: config.systemPrincipals,
    ...(config.failureQueueUrl ? { failures: sqsFailureQueue(new SQSClient({}), config.failureQueueUrl) } : {}),
    ...(config.selfFunction ? { continueDrain: invokeSelf(config.selfFunction, config.lambdaEndpoint) } : {}),
  };
}
