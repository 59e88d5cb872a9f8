'use strict';
/**
 * One IAM role per function, each allowed what its code does and nothing more (DESIGN.md "Who may
 * do what"). serverless.yml names them with `role:`; `${file(./infra/roles.js):resources}` makes
 * them.
 *
 * Why plain `AWS::IAM::Role` resources and not serverless-iam-roles-per-function (which supports
 * serverless v3): the plugin starts every role from the provider-level statements and its own
 * defaults and merges in the function's, so what a role holds is only known by reading the
 * plugin; here each role is the whole list below, in one file, derived like everything else from
 * infra/stores.js's buckets, and the test reads it back from the template. A function with its own
 * `role` gets nothing from serverless either: no shared role, and no `sqs:SendMessage` added for
 * its on-failure destination, so both destinations are granted here. One less dependency too.
 *
 * No action is `*`, no resource is `*`; the only wildcards are an object key inside a named bucket
 * (`bucket/*`) and a log stream inside the function's own log group (the group's ARN ends `:*`).
 */
const { s3Statements } = require('./stores');

/**
 * On every store and the control bucket, the same for the three functions: each of them reads,
 * writes, copies and deletes there (replicate and reconcile settle a key the same way the API's
 * writes, deletes and POST /reconcile do, lib/settle.ts), and any copy that is not one S3
 * CopyObject (over 5 GiB, or from or to the control bucket, which has its own client) streams
 * through lib-storage's Upload, which aborts its multipart upload when it fails.
 *   GetObject     GET, HEAD, presigned GET URLs; the source of CopyObject; If-Match deletes
 *   PutObject     PUT, the target of CopyObject, CreateMultipartUpload, UploadPart (the
 *                 presigned part URLs are signed by the API's role), CompleteMultipartUpload
 *   DeleteObject  DELETE, with or without If-Match
 *   AbortMultipartUpload  POST /uploads/abort; a failed streamed copy
 *   ListBucket    ListObjectsV2, HeadBucket, and a 404 (not 403) for a missing key on HEAD/GET
 * Not granted, because nothing calls them: ListMultipartUploadParts (the client lists its parts
 * itself), GetObjectVersion and the other version actions (only a person undoes an overwrite),
 * the tagging and ACL actions (buckets are BucketOwnerEnforced, objects untagged).
 */
const S3_OBJECT_ACTIONS = Object.freeze(['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload']);
const S3_BUCKET_ACTIONS = Object.freeze(['s3:ListBucket']);

const LOG_ACTIONS = Object.freeze(['logs:CreateLogStream', 'logs:PutLogEvents']);

/**
 * What each function does with the queues (serverless.yml resources). Replaying failed
 * replication events (lib/failures.ts) receives and deletes; an on-failure destination is sent
 * to by Lambda with the function's own role.
 */
const QUEUE_GRANTS = Object.freeze({
  // POST /reconcile and POST /reconcile/replay replay the failed events first.
  api: [{ queue: 'ReplicationFailures', actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage'] }],
  // Its on-failure destination.
  replicate: [{ queue: 'ReplicationFailures', actions: ['sqs:SendMessage'] }],
  // Replays failed events before it plans; its own runs that fail go to a queue of their own.
  reconcile: [
    { queue: 'ReplicationFailures', actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage'] },
    { queue: 'ReconcileFailures', actions: ['sqs:SendMessage'] },
  ],
});

/** The logical ids serverless gives a function's resources (naming.getNormalizedFunctionName). */
const capitalized = (fn) => fn.charAt(0).toUpperCase() + fn.slice(1);
const roleId = (fn) => `${capitalized(fn)}Role`;
const logGroupId = (fn) => `${capitalized(fn)}LogGroup`;

/**
 * The API invokes itself, asynchronously, to go on with an unlock that outlasts its request
 * (lib/deps.ts invokeSelf). By name, not GetAtt: the function depends on its role.
 */
const INVOKES_ITSELF = Object.freeze(['api']);

async function selfInvoke(ctx, fn) {
  if (!INVOKES_ITSELF.includes(fn)) return [];
  const name = `${await ctx.resolveVariable('self:service')}-${await ctx.resolveVariable('sls:stage')}-${fn}`;
  return [{ Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:${name}` } }];
}

async function role(ctx, fn) {
  const statements = [
    // Its own log group only (serverless creates the group, so no logs:CreateLogGroup).
    { Effect: 'Allow', Action: [...LOG_ACTIONS], Resource: { 'Fn::GetAtt': [logGroupId(fn), 'Arn'] } },
    ...(await s3Statements(ctx, { objects: [...S3_OBJECT_ACTIONS], buckets: [...S3_BUCKET_ACTIONS] })),
    ...QUEUE_GRANTS[fn].map(({ queue, actions }) => ({ Effect: 'Allow', Action: actions, Resource: { 'Fn::GetAtt': [queue, 'Arn'] } })),
    ...(await selfInvoke(ctx, fn)),
  ];
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      Description: `s3-dfs ${fn} function`,
      AssumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      },
      Policies: [{ PolicyName: fn, PolicyDocument: { Version: '2012-10-17', Statement: statements } }],
    },
  };
}

/** `resources:` entry: `ApiRole`, `ReplicateRole`, `ReconcileRole`. */
async function resources(ctx) {
  const Resources = {};
  for (const fn of Object.keys(QUEUE_GRANTS)) Resources[roleId(fn)] = await role(ctx, fn);
  return { Resources };
}

module.exports = { resources, S3_OBJECT_ACTIONS, S3_BUCKET_ACTIONS, QUEUE_GRANTS, INVOKES_ITSELF };
