'use strict';
/**
 * Everything serverless.yml derives from its one list of stores (`custom.stores`):
 * one bucket per store, the control bucket, the IAM statements on them and `DFS_STORES`.
 * A third store is one more list item; nothing here knows how many there are.
 *
 * serverless v3 calls each exported function from `${file(./infra/stores.js):<name>}` with
 * `{ resolveVariable, options }`. For one run the list can be replaced without editing the
 * file: `sls package --param="stores=server1,server2,server3"`.
 */

// The same rule lib/config.ts parseStores applies to DFS_STORES.
const STORE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
// S3's rule for a bucket name (without the rarely used dots).
const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/**
 * The logical id serverless itself gives the bucket of an `s3` event (naming.getBucketLogicalId):
 * declaring the store bucket under that id makes serverless merge the event's notification
 * into our bucket instead of creating a second bucket of the same name.
 */
const eventBucketId = (bucket) => {
  const alnum = bucket.replace(/[^0-9A-Za-z]/g, '');
  return `S3Bucket${alnum.charAt(0).toUpperCase()}${alnum.slice(1)}`;
};

/**
 * The buckets of a stage: `{ stores: [{ name, bucket, logicalId }], control }`. Pure, so
 * scripts/stack.ts derives the same names for the local stack without running serverless.
 */
function layoutOf(names, prefix) {
  if (!Array.isArray(names) || names.length === 0) throw new Error('custom.stores must list at least one store');
  for (const name of names) {
    if (typeof name !== 'string' || !STORE_NAME.test(name)) {
      throw new Error(`store name "${name}" must be lower-case letters, digits and "-"`);
    }
  }
  if (new Set(names).size !== names.length) throw new Error(`custom.stores lists a store twice: ${names.join(', ')}`);
  const stores = names.map((name) => ({ name, bucket: `${prefix}-${name}`, logicalId: eventBucketId(`${prefix}-${name}`) }));
  const control = { name: 'control', bucket: `${prefix}-control`, logicalId: 'ControlBucket' };
  const ids = new Set([...stores, control].map((b) => b.logicalId));
  if (ids.size !== stores.length + 1) throw new Error(`store names collide once made CloudFormation ids: ${names.join(', ')}`);
  for (const b of [...stores, control]) {
    if (!BUCKET_NAME.test(b.bucket)) {
      throw new Error(`bucket name "${b.bucket}" is not a valid S3 name (3-63 of a-z 0-9 -); shorten param bucketPrefix`);
    }
  }
  return { stores, control };
}

/** Stores named by `--param="stores=a,b"` when given, else by `custom.stores`. */
async function layout({ resolveVariable }) {
  const override = await resolveVariable("param:stores, ''");
  const names = override ? String(override).split(',').map((s) => s.trim()) : await resolveVariable('self:custom.stores');
  return layoutOf(names, await resolveVariable('param:bucketPrefix'));
}

/**
 * Private, SSE-S3 encrypted. AES256 and not KMS on purpose: the read path takes a single-part
 * ETag for the MD5 of the content, which holds for SSE-S3 only. No Retain policy: CloudFormation
 * refuses to delete a bucket that still holds objects, so a removal cannot lose files.
 */
const bucket = (name) => ({
  Type: 'AWS::S3::Bucket',
  Properties: {
    BucketName: name,
    BucketEncryption: {
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    },
    PublicAccessBlockConfiguration: {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    },
    OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    // Parts of uploads a client never completed nor aborted (a killed CLI) are billed until removed.
    LifecycleConfiguration: {
      Rules: [{ Id: 'abort-incomplete-uploads', Status: 'Enabled', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }],
    },
  },
});

/**
 * How long the control bucket keeps its records (README "The replication rules"). Tombstones and
 * delete intents outlive the failure queue (14 days) and the event age, so a late or replayed
 * event still finds what it needs; a kept version matters only until late deletes are in (hours).
 * A record rewritten (a tombstone raised again) starts its time afresh.
 */
const CONTROL_EXPIRY = Object.freeze({ 'tombstones/': 30, 'journal/': 30, 'superseded/': 2 });

const controlBucketResource = (name) => {
  const b = bucket(name);
  b.Properties.LifecycleConfiguration.Rules.push(
    ...Object.entries(CONTROL_EXPIRY).map(([prefix, days]) => ({
      Id: `expire-${prefix.replace('/', '')}`,
      Status: 'Enabled',
      Prefix: prefix,
      ExpirationInDays: days,
    })),
  );
  return b;
};

/** `resources:` entry: the buckets, and their names as stack outputs. */
async function resources(ctx) {
  const { stores, control } = await layout(ctx);
  const Resources = {};
  const Outputs = {};
  for (const b of stores) Resources[b.logicalId] = bucket(b.bucket);
  Resources[control.logicalId] = controlBucketResource(control.bucket);
  for (const b of [...stores, control]) Outputs[`${b.logicalId}Name`] = { Value: { Ref: b.logicalId } };
  return { Resources, Outputs };
}

/** `provider.iam.role.statements`: objects of the store and control buckets, nothing else. */
async function iamStatements(ctx) {
  const { stores, control } = await layout(ctx);
  // ARNs from names, not GetAtt: a store bucket depends on the replicate function's invoke
  // permission, so the role referring back to the bucket would make a circular dependency.
  const arns = [...stores, control].map((b) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${b.bucket}` }));
  const objects = [...stores, control].map((b) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${b.bucket}/*` }));
  return [
    {
      Effect: 'Allow',
      // PutObject also covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload.
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      Resource: objects,
    },
    { Effect: 'Allow', Action: ['s3:ListBucket'], Resource: arns },
    // Reconcile replays the replication events that failed every retry.
    { Effect: 'Allow', Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage'], Resource: { 'Fn::GetAtt': ['ReplicationFailures', 'Arn'] } },
  ];
}

/** `DFS_STORES`: the JSON list lib/config.ts parseStores reads. */
async function storesEnv(ctx) {
  const { stores } = await layout(ctx);
  return JSON.stringify(stores.map(({ name, bucket }) => ({ name, bucket })));
}

/**
 * The replicate function's events: created and removed objects on every store bucket, named
 * literally (serverless-s3-local matches events on the literal name).
 */
async function replicateEvents(ctx) {
  const { stores } = await layout(ctx);
  return stores.flatMap(({ bucket }) =>
    ['s3:ObjectCreated:*', 's3:ObjectRemoved:*'].map((event) => ({ s3: { bucket, event } })),
  );
}

/** `DFS_CONTROL_BUCKET`. */
async function controlBucket(ctx) {
  return (await layout(ctx)).control.bucket;
}

module.exports = { CONTROL_EXPIRY, resources, iamStatements, storesEnv, controlBucket, replicateEvents, layoutOf };
