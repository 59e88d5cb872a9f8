'use strict';
/**
 * Everything serverless.yml derives from its one list of stores (`custom.stores`):
 * one bucket per store, the control bucket, the access log bucket, their policies, the IAM
 * statements on them (for infra/roles.js) and `DFS_STORES`.
 * A third store is one more list item; nothing here knows how many there are.
 *
 * serverless v3 calls each exported function from `${file(./infra/stores.js):<name>}` with
 * `{ resolveVariable, options }`. For one run the list can be replaced without editing the
 * file: `sls package --param="stores=server1,server2,server3"`.
 */

const { numberParam } = require('./params');

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
 * The buckets of a stage: `{ stores: [{ name, bucket, logicalId }], control, logs }`. Pure, so
 * scripts/stack.ts derives the same names for the local stack without running serverless.
 * `logs` receives the server access logs of the others.
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
  const logs = { name: 'logs', bucket: `${prefix}-logs`, logicalId: 'AccessLogsBucket' };
  const all = [...stores, control, logs];
  if (new Set(all.map((b) => b.logicalId)).size !== all.length) {
    throw new Error(`store names collide once made CloudFormation ids: ${names.join(', ')}`);
  }
  if (new Set(all.map((b) => b.bucket)).size !== all.length) {
    throw new Error(`a store may not be called "control" or "logs": those buckets are the stack's own (${names.join(', ')})`);
  }
  for (const b of all) {
    if (!BUCKET_NAME.test(b.bucket)) {
      throw new Error(`bucket name "${b.bucket}" is not a valid S3 name (3-63 of a-z 0-9 -); shorten param bucketPrefix`);
    }
  }
  return { stores, control, logs };
}

/** Stores named by `--param="stores=a,b"` when given, else by `custom.stores`. */
async function layout({ resolveVariable }) {
  const override = await resolveVariable("param:stores, ''");
  const names = override ? String(override).split(',').map((s) => s.trim()) : await resolveVariable('self:custom.stores');
  return layoutOf(names, await resolveVariable('param:bucketPrefix'));
}

/**
 * A bucket's ARN (`suffix` '/*' for its objects), built from its name and not by GetAtt: a store
 * bucket depends on the replicate function's invoke permission, so a role or policy referring
 * back to the bucket would make a circular dependency.
 */
const arnOf = (bucket, suffix = '') => ({ 'Fn::Sub': `arn:\${AWS::Partition}:s3:::${bucket}${suffix}` });

/**
 * Private, SSE-S3 encrypted. AES256 and not KMS on purpose: the read path takes a single-part
 * ETag for the MD5 of the content, which holds for SSE-S3 only (and S3 delivers server access
 * logs to SSE-S3 buckets only). No Retain policy: CloudFormation refuses to delete a bucket that
 * still holds objects, so a removal cannot lose files. With `logsTo`, the bucket's server access
 * logs go there, under its own name.
 */
const bucket = (b, { logsTo } = {}) => ({
  Type: 'AWS::S3::Bucket',
  Properties: {
    BucketName: b.bucket,
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
    ...(logsTo ? { LoggingConfiguration: { DestinationBucketName: { Ref: logsTo.logicalId }, LogFilePrefix: `${b.bucket}/` } } : {}),
  },
});

/**
 * A store keeps every version it replaces or deletes for `noncurrentDays`, so a person can undo
 * an overwrite or a delete (README "Deploy": fetch the version, `dfs put --touch` it); the code
 * never reads old versions. Delete markers with no version left behind them go too.
 * Versioning changes nothing the code relies on: a delete becomes the
 * `ObjectRemoved:DeleteMarkerCreated` event (replicate takes any `ObjectRemoved:*`), a HEAD or a
 * listing sees current versions only, conditional writes and deletes test the current one.
 */
const storeBucket = (b, { logsTo, noncurrentDays, webOrigins }) => {
  const r = bucket(b, { logsTo });
  r.Properties.VersioningConfiguration = { Status: 'Enabled' };
  r.Properties.CorsConfiguration = webCors(webOrigins);
  r.Properties.LifecycleConfiguration.Rules.push({
    Id: 'expire-noncurrent-versions',
    Status: 'Enabled',
    NoncurrentVersionExpiration: { NoncurrentDays: noncurrentDays },
    ExpiredObjectDeleteMarker: true,
  });
  return r;
};

/**
 * The web page sends the parts of a large upload straight to the stores (presigned UploadPart
 * URLs) and fetches large downloads from them (presigned GET URLs): the buckets let the page's
 * origin, and no other, PUT and GET, and read a part's ETag, which completing the upload needs.
 * Presigned URLs carry their own signature, so CORS grants no access by itself; it only lets
 * the page's JavaScript see the answers. The control and log buckets get none.
 */
const webCors = (origins) => ({
  CorsRules: [
    {
      Id: 'web-page',
      AllowedOrigins: origins,
      AllowedMethods: ['GET', 'PUT'],
      AllowedHeaders: ['content-type'],
      ExposedHeaders: ['ETag'],
      MaxAge: 3600,
    },
  ],
});

/**
 * The origins the page is served from: `param:webOrigins` (comma-separated), by default the
 * HTTP API's own (`https://<id>.execute-api.<region>.amazonaws.com`), where GET / serves it.
 * Set it when the API is reached through a custom domain.
 */
async function webOriginsOf({ resolveVariable }) {
  const raw = String((await resolveVariable("param:webOrigins, ''")) ?? '').trim();
  if (!raw) return [{ 'Fn::Sub': 'https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}' }];
  const origins = raw.split(',').map((o) => o.trim());
  for (const o of origins) {
    if (!/^https?:\/\/[^/\s*]+$/.test(o)) throw new Error(`param webOrigins: "${o}" is not an origin like https://files.example.com (no path, no wildcard)`);
  }
  return origins;
}

/**
 * How long the control bucket keeps its records (README "The replication rules"). Tombstones and
 * delete intents outlive the failure queue (14 days) and the event age, so a late or replayed
 * event still finds what it needs; a kept version matters only until late deletes are in (hours).
 * A record rewritten (a tombstone raised again) starts its time afresh.
 *
 * Not versioned: every shared record there changes by a conditional merge (If-Match /
 * If-None-Match) of what was read, so no write of ours loses one, and the expiry rules are what
 * keeps the bucket small. Versioning would keep a copy of every tombstone, intent and lock at each
 * of their many rewrites, with nothing a person would undo among them, and would turn these
 * expiries into delete markers that need rules of their own.
 */
const CONTROL_EXPIRY = Object.freeze({ 'tombstones/': 30, 'journal/': 30, 'superseded/': 2 });

const controlBucketResource = (b, { logsTo }) => {
  const r = bucket(b, { logsTo });
  r.Properties.LifecycleConfiguration.Rules.push(
    ...Object.entries(CONTROL_EXPIRY).map(([prefix, days]) => ({
      Id: `expire-${prefix.replace('/', '')}`,
      Status: 'Enabled',
      Prefix: prefix,
      ExpirationInDays: days,
    })),
  );
  return r;
};

/**
 * Server access logs, not CloudTrail data events (README "Deploy"): every request to the stores
 * and the control bucket is recorded, refused and anonymous ones included, at no charge per
 * request. A data event costs more than the GET it records, and here a read is a GET and a HEAD
 * per store, a write half a dozen requests with its replication; a trail is also an account-wide
 * resource that companies often run centrally already. The price is best-effort delivery within
 * hours, which an audit of a file store can live with. The log bucket does not log itself.
 */
const logsBucketResource = (b, { days }) => {
  const r = bucket(b);
  r.Properties.LifecycleConfiguration.Rules = [{ Id: 'expire-access-logs', Status: 'Enabled', ExpirationInDays: days }];
  return r;
};

/** Refuses every request to the bucket that does not come over TLS, whoever makes it. */
const denyInsecureTransport = (b) => ({
  Sid: 'DenyInsecureTransport',
  Effect: 'Deny',
  Principal: '*',
  Action: 's3:*',
  Resource: [arnOf(b.bucket), arnOf(b.bucket, '/*')],
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
});

const bucketPolicy = (b, extra = []) => ({
  Type: 'AWS::S3::BucketPolicy',
  Properties: {
    Bucket: { Ref: b.logicalId },
    PolicyDocument: { Version: '2012-10-17', Statement: [denyInsecureTransport(b), ...extra] },
  },
});

/**
 * S3 writes the logs as the logging service (the buckets are BucketOwnerEnforced: a policy, no
 * ACL), for our own account's `sources` only, named by ARN (a Ref would be circular).
 */
const logDelivery = (logs, sources) => ({
  Sid: 'S3ServerAccessLogs',
  Effect: 'Allow',
  Principal: { Service: 'logging.s3.amazonaws.com' },
  Action: 's3:PutObject',
  Resource: arnOf(logs.bucket, '/*'),
  Condition: {
    StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
    ArnLike: { 'aws:SourceArn': sources.map((s) => arnOf(s.bucket)) },
  },
});

const policyId = (b) => `${b.logicalId}Policy`;

/**
 * `resources:` entry: the buckets, a TLS-only policy on each, and their names as stack outputs.
 * Params: `noncurrentDays` (old versions kept on the stores), `accessLogDays` (logs kept).
 */
async function resources(ctx) {
  const { stores, control, logs } = await layout(ctx);
  const noncurrentDays = await numberParam(ctx, 'noncurrentDays');
  const accessLogDays = await numberParam(ctx, 'accessLogDays');
  const webOrigins = await webOriginsOf(ctx);
  const Resources = {};
  const Outputs = {};
  for (const b of stores) Resources[b.logicalId] = storeBucket(b, { logsTo: logs, noncurrentDays, webOrigins });
  Resources[control.logicalId] = controlBucketResource(control, { logsTo: logs });
  Resources[logs.logicalId] = logsBucketResource(logs, { days: accessLogDays });
  for (const b of [...stores, control]) Resources[policyId(b)] = bucketPolicy(b);
  Resources[policyId(logs)] = bucketPolicy(logs, [logDelivery(logs, [...stores, control])]);
  for (const b of [...stores, control, logs]) Outputs[`${b.logicalId}Name`] = { Value: { Ref: b.logicalId } };
  return { Resources, Outputs };
}

/**
 * `resources.extensions:` S3 may check at PutBucketLogging that it can write to the log bucket,
 * so every logged bucket waits for the log bucket's policy. An extension, not a DependsOn in
 * `resources`: serverless gives a store bucket a DependsOn list of its own (its event's invoke
 * permission), which a merge would overwrite item by item; an extension appends.
 */
async function extensions(ctx) {
  const { stores, control, logs } = await layout(ctx);
  return Object.fromEntries([...stores, control].map((b) => [b.logicalId, { DependsOn: [policyId(logs)] }]));
}

/**
 * IAM statements on the buckets (infra/roles.js): `objects` actions on the objects of every store
 * and the control bucket, `buckets` actions on those buckets; each is named, no wildcard spans
 * buckets.
 */
async function s3Statements(ctx, { objects, buckets }) {
  const { stores, control } = await layout(ctx);
  const all = [...stores, control];
  return [
    { Effect: 'Allow', Action: objects, Resource: all.map((b) => arnOf(b.bucket, '/*')) },
    { Effect: 'Allow', Action: buckets, Resource: all.map((b) => arnOf(b.bucket)) },
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

module.exports = { CONTROL_EXPIRY, resources, extensions, s3Statements, storesEnv, controlBucket, replicateEvents, layoutOf };
