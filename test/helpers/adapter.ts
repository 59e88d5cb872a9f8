import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { sdkStreamMixin } from '@smithy/core/serde';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import type { Store } from '../../lib/stores';
import { testClient } from './conditional-s3';

/**
 * A store on a client of its own, mocked: the adapter remembers, per client, which buckets it
 * has seen, so its tests take a fresh one each (`beforeEach(() => ({ m, store } = freshStore()))`).
 */
export function freshStore(): { client: S3Client; m: AwsClientStub<S3Client>; store: Store } {
  const client = testClient();
  return { client, m: mockClient(client), store: { name: 'server1', bucket: 'bucket-1', s3: client, flavor: 'aws' } };
}

/** What `p` rejected with, or undefined when it resolved. */
export const caught = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

/** A GetObject body as the SDK hands it out. */
export const textBody = (text: string) => sdkStreamMixin(Readable.from([Buffer.from(text)]));
