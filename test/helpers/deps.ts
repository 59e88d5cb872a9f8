import { S3Client } from '@aws-sdk/client-s3';
import type { Deps } from '../../lib/deps';
import type { Store } from '../../lib/stores';

/** Deps for tests: the given stores, a control bucket on the first store's client, small defaults. */
export function makeDeps(stores: Store[], overrides: Partial<Deps> = {}): Deps {
  const flavor = overrides.flavor ?? 's3rver';
  return {
    stores: stores.map((s) => ({ flavor, ...s })),
    control: { bucket: 'control', s3: stores[0]?.s3 ?? new S3Client({}) },
    inlineLimit: 1024 * 1024,
    putInlineLimit: 4 * 1024 * 1024,
    urlExpirySeconds: 60,
    compareChunkBytes: 1024 * 1024,
    cursorSecret: 'test-secret',
    flavor: 's3rver',
    eventMaxAgeMs: 0,
    meter: { bodyBytes: 0 },
    ...overrides,
  };
}
