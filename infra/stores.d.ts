/** Types of infra/stores.js for the TypeScript scripts that share its naming rule. */
export interface BucketLayout {
  name: string;
  bucket: string;
  logicalId: string;
}

/**
 * The buckets of a stage from its store names and bucket prefix (`logs`: the server access log
 * bucket); throws on an invalid name.
 */
export function layoutOf(names: unknown, prefix: string): { stores: BucketLayout[]; control: BucketLayout; logs: BucketLayout };
