import { execFile } from 'node:child_process';
import { readdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import { parseStores } from '../../lib/config';

const ROOT = resolve(__dirname, '../..');
const SLS = join(ROOT, 'node_modules', '.bin', 'sls');
const FUNCTIONS = ['api', 'replicate', 'reconcile'] as const;
type Fn = (typeof FUNCTIONS)[number];

interface Resource {
  Type: string;
  Properties: Record<string, any>;
  DependsOn?: string | string[];
}
interface Template {
  Resources: Record<string, Resource>;
}
interface Packaged {
  template: Template;
  /** The template of a first deploy: serverless's deployment bucket only. */
  createTemplate: Template;
  /** Every zip of the package folder, by file name. */
  zips: Record<string, Buffer>;
}

/**
 * `sls package --stage dev` into a temporary folder, with no AWS credentials at all: a
 * template that needed an AWS call (`${aws:accountId}`, SSM, CloudFormation outputs) fails here.
 */
async function slsPackage(name: string, args: string[] = []): Promise<Packaged> {
  const dir = mkdtempSync(join(tmpdir(), `sls-package-${name}-`));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v;
  Object.assign(env, {
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    SLS_TELEMETRY_DISABLED: '1',
    SLS_NOTIFICATIONS_MODE: 'off',
    // Its own build folder: a concurrent stack or package must not see it deleted.
    DFS_BUILD_DIR: join('.esbuild', `package-${process.pid}-${name}`),
  });
  try {
    await promisify(execFile)(process.execPath, [SLS, 'package', '--stage', 'dev', '--package', dir, ...args], {
      cwd: ROOT,
      env,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`sls package failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
    });
    const json = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as Template;
    const zips: Record<string, Buffer> = {};
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.zip'))) zips[f] = readFileSync(join(dir, f));
    return {
      template: json('cloudformation-template-update-stack.json'),
      createTemplate: json('cloudformation-template-create-stack.json'),
      zips,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    try {
      rmdirSync(join(ROOT, '.esbuild'));
    } catch {
      // in use by another build, or gone
    }
  }
}

/** A zip's entries from its central directory: name, and the bytes (stored or deflated). */
function zipEntries(zip: Buffer): Map<string, () => Buffer> {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const entries = new Map<string, () => Buffer>();
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('bad central directory entry');
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const skip = zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    entries.set(name, () => {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`${name}: compression method ${method}`);
    });
    at += 46 + nameLength + skip;
  }
  return entries;
}

const ofType = (t: Template, type: string) => Object.entries(t.Resources).filter(([, r]) => r.Type === type);
const allBuckets = (t: Template) => ofType(t, 'AWS::S3::Bucket');
const namedBuckets = (t: Template) => allBuckets(t).filter(([, b]) => typeof b.Properties?.BucketName === 'string');
const bucketNamed = (t: Template, name: string) => {
  const found = namedBuckets(t).find(([, b]) => b.Properties.BucketName === name);
  if (!found) throw new Error(`no bucket ${name}`);
  return found;
};
const apiEnv = (t: Template) => t.Resources.ApiLambdaFunction!.Properties.Environment.Variables as Record<string, string>;
const lambdaId = (fn: Fn) => `${fn.charAt(0).toUpperCase()}${fn.slice(1)}LambdaFunction`;
const list = <T>(v: T | T[]) => ([] as T[]).concat(v);
const dependsOn = (r: Resource) => (r.DependsOn === undefined ? [] : list(r.DependsOn));

/** The role resource a function runs with (`Fn::GetAtt: [id, Arn]`), and its id. */
function roleOf(t: Template, fn: Fn): [string, Resource] {
  const ref = t.Resources[lambdaId(fn)]!.Properties.Role;
  const id = ref?.['Fn::GetAtt']?.[0] as string | undefined;
  if (!id || ref['Fn::GetAtt'][1] !== 'Arn' || !t.Resources[id]) throw new Error(`${fn} has no role of this stack: ${JSON.stringify(ref)}`);
  return [id, t.Resources[id]!];
}

/**
 * A policy resource written as one string: a Sub's text, a Join's parts with each Ref as `${Id}`
 * (the form serverless uses), `GetAtt:Id.Attr`, `Ref:Id` or the literal.
 */
function resourceKey(r: unknown): string {
  if (typeof r === 'string') return r;
  const o = r as Record<string, any>;
  if (typeof o?.['Fn::Sub'] === 'string') return o['Fn::Sub'];
  if (Array.isArray(o?.['Fn::Join']) && o['Fn::Join'][0] === '') {
    return (o['Fn::Join'][1] as unknown[]).map((p) => (typeof p === 'string' ? p : `\${${(p as { Ref: string }).Ref}}`)).join('');
  }
  if (Array.isArray(o?.['Fn::GetAtt'])) return `GetAtt:${o['Fn::GetAtt'].join('.')}`;
  if (typeof o?.Ref === 'string') return `Ref:${o.Ref}`;
  return JSON.stringify(r);
}

/** Every (action, resource) a role allows, as `action on resource` lines, sorted. */
function grants(role: Resource): string[] {
  const lines = new Set<string>();
  for (const policy of role.Properties.Policies ?? []) {
    for (const s of policy.PolicyDocument.Statement) {
      expect(s.Effect).toBe('Allow');
      for (const a of list(s.Action)) for (const r of list(s.Resource)) lines.add(`${a} on ${resourceKey(r)}`);
    }
  }
  return [...lines].sort();
}

/** The grants each function must have, exactly: what its code does (infra/roles.js says where). */
function expectedGrants(fn: Fn, buckets: string[]): string[] {
  const s3 = buckets.flatMap((b) => [
    ...['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'].map((a) => `${a} on arn:\${AWS::Partition}:s3:::${b}/*`),
    `s3:ListBucket on arn:\${AWS::Partition}:s3:::${b}`,
  ]);
  const logGroup = `GetAtt:${fn.charAt(0).toUpperCase()}${fn.slice(1)}LogGroup.Arn`;
  const logs = ['logs:CreateLogStream', 'logs:PutLogEvents'].map((a) => `${a} on ${logGroup}`);
  const replay = ['sqs:ReceiveMessage', 'sqs:DeleteMessage'].map((a) => `${a} on GetAtt:ReplicationFailures.Arn`);
  // The API goes on with a long lock drain by invoking itself, and nothing else.
  const selfInvoke = 'lambda:InvokeFunction on arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:s3-dfs-dev-api';
  const sqs: Record<Fn, string[]> = {
    api: [...replay, selfInvoke],
    replicate: ['sqs:SendMessage on GetAtt:ReplicationFailures.Arn'],
    reconcile: [...replay, 'sqs:SendMessage on GetAtt:ReconcileFailures.Arn'],
  };
  return [...s3, ...logs, ...sqs[fn]].sort();
}

/** The bucket policies of a bucket (by logical id). */
const policiesOf = (t: Template, id: string) =>
  ofType(t, 'AWS::S3::BucketPolicy')
    .filter(([, p]) => p.Properties.Bucket?.Ref === id)
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as any[]);

/** A Deny of everything to everyone without TLS, on the bucket and its objects. */
function deniesInsecureTransport(statements: any[], bucketArn: (suffix: string) => string): boolean {
  return statements.some(
    (s) =>
      s.Effect === 'Deny' &&
      s.Principal === '*' &&
      list(s.Action).includes('s3:*') &&
      String(s.Condition?.Bool?.['aws:SecureTransport']) === 'false' &&
      list(s.Resource).map(resourceKey).sort().join(' ') === [bucketArn(''), bucketArn('/*')].sort().join(' '),
  );
}

const STORES_TWO = ['s3-dfs-dev-server1', 's3-dfs-dev-server2'];
const STORES_THREE = ['acme-dfs-server1', 'acme-dfs-server2', 'acme-dfs-server3'];
const TOPIC = 'arn:aws:sns:us-east-1:123456789012:dfs-ops';

let two: Packaged;
let three: Packaged;

// One after the other: serverless-esbuild stages every zip in the project's .serverless/
// whatever --package says, and each run removes it when done.
beforeAll(async () => {
  two = await slsPackage('two');
  three = await slsPackage('three', [
    '--param=stores=server1,server2,server3',
    '--param=bucketPrefix=acme-dfs',
    '--param=noncurrentDays=7',
    '--param=apiRateLimit=10',
    '--param=apiBurstLimit=20',
    '--param=apiConcurrency=5',
    `--param=alarmTopicArn=${TOPIC}`,
    '--param=webOrigins=https://files.acme.example',
  ]);
}, 240_000);

describe('sls package --stage dev', () => {
  it('makes one bucket per store, a control bucket and an access log bucket, named after the stage', () => {
    expect(namedBuckets(two.template).map(([, b]) => b.Properties.BucketName).sort()).toEqual([
      's3-dfs-dev-control',
      's3-dfs-dev-logs',
      's3-dfs-dev-server1',
      's3-dfs-dev-server2',
    ]);
  });

  it('keeps every bucket encrypted with SSE-S3 (AES256), never KMS', () => {
    for (const [, b] of namedBuckets(two.template)) {
      expect(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
        { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
      ]);
    }
    expect(JSON.stringify(two.template)).not.toMatch(/aws:kms/);
  });

  it('blocks public access on every bucket, serverless’s deployment bucket included, on create and on update', () => {
    const blocked = { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true };
    const buckets = allBuckets(two.template);
    expect(buckets.map(([id]) => id)).toContain('ServerlessDeploymentBucket');
    for (const [, b] of buckets) expect(b.Properties.PublicAccessBlockConfiguration).toEqual(blocked);
    const created = allBuckets(two.createTemplate);
    expect(created.map(([id]) => id)).toEqual(['ServerlessDeploymentBucket']);
    expect(created[0]![1].Properties.PublicAccessBlockConfiguration).toEqual(blocked);
  });

  it('refuses requests without TLS on every bucket, by a Deny for everyone in its policy', () => {
    const buckets = allBuckets(two.template);
    expect(buckets.length).toBe(5);
    for (const [id, b] of buckets) {
      // Ours are named; serverless's deployment bucket is not, and its policy names it by Ref.
      const name = b.Properties.BucketName ?? `\${${id}}`;
      const arn = (suffix: string) => `arn:\${AWS::Partition}:s3:::${name}${suffix}`;
      expect({ id, tlsOnly: deniesInsecureTransport(policiesOf(two.template, id), arn) }).toEqual({ id, tlsOnly: true });
    }
  });

  it('versions the stores and expires a replaced or deleted version after noncurrentDays (30 by default)', () => {
    for (const name of STORES_TWO) {
      const [, b] = bucketNamed(two.template, name);
      expect(b.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(b.Properties.LifecycleConfiguration.Rules).toContainEqual(
        expect.objectContaining({ Status: 'Enabled', NoncurrentVersionExpiration: { NoncurrentDays: 30 } }),
      );
    }
    const [, logs] = bucketNamed(two.template, 's3-dfs-dev-logs');
    expect(logs.Properties.VersioningConfiguration).toBeUndefined();
  });

  it('keeps the control bucket’s expiry rules: tombstones and journal 30 days, superseded 2, unfinished uploads 1', () => {
    const [, control] = bucketNamed(two.template, 's3-dfs-dev-control');
    const rules = (control.Properties.LifecycleConfiguration.Rules as any[]).filter((r) => r.Status === 'Enabled');
    expect(rules.filter((r) => r.Prefix).map((r) => [r.Prefix, r.ExpirationInDays]).sort()).toEqual([
      ['journal/', 30],
      ['superseded/', 2],
      ['tombstones/', 30],
    ]);
    expect(rules).toContainEqual(expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }));
  });

  it('sends the server access logs of every store and the control bucket to the log bucket, which only S3 logging may write', () => {
    const logged = [...STORES_TWO, 's3-dfs-dev-control'];
    for (const name of logged) {
      const [, b] = bucketNamed(two.template, name);
      expect(b.Properties.LoggingConfiguration).toEqual({ DestinationBucketName: { Ref: 'AccessLogsBucket' }, LogFilePrefix: `${name}/` });
      // S3 may check at PutBucketLogging that the log bucket lets it write.
      expect(dependsOn(b)).toContain('AccessLogsBucketPolicy');
    }
    const [logsId, logs] = bucketNamed(two.template, 's3-dfs-dev-logs');
    expect(logsId).toBe('AccessLogsBucket');
    expect(logs.Properties.LoggingConfiguration).toBeUndefined();
    expect(logs.Properties.LifecycleConfiguration.Rules).toContainEqual(expect.objectContaining({ Status: 'Enabled', ExpirationInDays: 90 }));
    const allows = policiesOf(two.template, logsId).filter((s) => s.Effect === 'Allow');
    expect(allows).toHaveLength(1);
    expect(allows[0]).toMatchObject({
      Principal: { Service: 'logging.s3.amazonaws.com' },
      Action: 's3:PutObject',
      Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:s3:::s3-dfs-dev-logs/*' },
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    });
    expect(list(allows[0].Condition.ArnLike['aws:SourceArn']).map(resourceKey).sort()).toEqual(
      logged.map((b) => `arn:\${AWS::Partition}:s3:::${b}`).sort(),
    );
  });

  it('gives the api function the stores, the control bucket and the limits, and no local endpoint', () => {
    const fn = two.template.Resources.ApiLambdaFunction!.Properties;
    expect(fn.Handler).toBe('handlers/api.handler');
    expect(fn.Runtime).toBe('nodejs22.x');
    const env = apiEnv(two.template);
    expect(parseStores(env.DFS_STORES!)).toEqual([
      { name: 'server1', bucket: 's3-dfs-dev-server1' },
      { name: 'server2', bucket: 's3-dfs-dev-server2' },
    ]);
    expect(env).toMatchObject({
      DFS_CONTROL_BUCKET: 's3-dfs-dev-control',
      DFS_INLINE_LIMIT: '1048576',
      DFS_URL_EXPIRY: '900',
    });
    expect(env.DFS_S3_ENDPOINT ?? '').toBe('');
  });

  it('tells every function the three roles as the system\'s principals in S3 events', () => {
    const principals = { 'Fn::Join': [',', ['ApiRole', 'ReplicateRole', 'ReconcileRole'].map((role) => ({ 'Fn::Join': ['', ['AWS:', { 'Fn::GetAtt': [role, 'RoleId'] }]] }))] };
    for (const fn of ['ApiLambdaFunction', 'ReplicateLambdaFunction', 'ReconcileLambdaFunction']) {
      expect(two.template.Resources[fn]!.Properties.Environment.Variables.DFS_SYSTEM_PRINCIPALS).toEqual(principals);
    }
  });

  it('routes GET /files/{key+} of an HTTP API with payload 2.0 to the api function', () => {
    const routes = ofType(two.template, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    expect(routes).toContain('GET /files/{key+}');
    const [[, integration]] = ofType(two.template, 'AWS::ApiGatewayV2::Integration') as [[string, Resource]];
    expect(integration.Properties.PayloadFormatVersion).toBe('2.0');
    expect(ofType(two.template, 'AWS::ApiGatewayV2::Api')[0]![1].Properties.ProtocolType).toBe('HTTP');
  });

  it('serves the web page: GET / and GET /assets/{name} go to api, whose bundle alone holds the built page', () => {
    const routes = ofType(two.template, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    expect(routes).toEqual(expect.arrayContaining(['GET /', 'GET /assets/{name}']));
    const bundle = (fn: Fn) => zipEntries(two.zips[`${fn}.zip`]!).get(`handlers/${fn}.js`)!().toString('utf8');
    // Tested, not matched: a failed toMatch would print the whole bundle.
    const api = bundle('api');
    expect(/<script type=\\?"module\\?" src=\\?"assets\/app\.[A-Z0-9]{8}\.js\\?">/.test(api)).toBe(true);
    expect(/"?app\.[A-Z0-9]{8}\.css"?:\{"?type"?:"text\/css; charset=utf-8"/.test(api)).toBe(true);
    for (const fn of ['replicate', 'reconcile'] as const) expect(bundle(fn).includes('assets/app.')).toBe(false);
  });

  it('lets the HTTP API\'s own origin, and no other, PUT parts to the stores and GET from them, with the ETag exposed; the control and log buckets get no CORS', () => {
    expect(two.template.Resources.HttpApi?.Type).toBe('AWS::ApiGatewayV2::Api');
    for (const [, b] of namedBuckets(two.template)) {
      const name: string = b.Properties.BucketName;
      if (/-(control|logs)$/.test(name)) {
        expect(b.Properties.CorsConfiguration).toBeUndefined();
        continue;
      }
      expect(b.Properties.CorsConfiguration).toEqual({
        CorsRules: [
          {
            Id: 'web-page',
            AllowedOrigins: [{ 'Fn::Sub': 'https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}' }],
            AllowedMethods: ['GET', 'PUT'],
            AllowedHeaders: ['content-type'],
            ExposedHeaders: ['ETag'],
            MaxAge: 3600,
          },
        ],
      });
    }
  });

  it('throttles the HTTP API stage (100 requests/s, bursts of 200) and logs each request as JSON, without headers', () => {
    const stage = two.template.Resources.HttpApiStage!.Properties;
    expect(stage.DefaultRouteSettings).toMatchObject({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 });
    expect(stage.AccessLogSettings.DestinationArn).toEqual({ 'Fn::GetAtt': ['HttpApiLogGroup', 'Arn'] });
    const format = JSON.parse(stage.AccessLogSettings.Format) as Record<string, string>;
    expect(format).toMatchObject({ requestId: '$context.requestId', status: '$context.status', routeKey: '$context.routeKey' });
    expect(stage.AccessLogSettings.Format).not.toMatch(/authorization|header/i);
  });

  it('reserves 50 concurrent executions for api only, so the API cannot take replicate’s', () => {
    expect(two.template.Resources.ApiLambdaFunction!.Properties.ReservedConcurrentExecutions).toBe(50);
    expect(two.template.Resources.ReplicateLambdaFunction!.Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  it('runs each function with a role of its own and no shared role', () => {
    expect(ofType(two.template, 'AWS::Lambda::Function').map(([id]) => id).sort()).toEqual(FUNCTIONS.map(lambdaId).sort());
    expect(two.template.Resources.IamRoleLambdaExecution).toBeUndefined();
    const ids = FUNCTIONS.map((fn) => roleOf(two.template, fn)[0]);
    expect(new Set(ids).size).toBe(FUNCTIONS.length);
    for (const fn of FUNCTIONS) {
      const [, role] = roleOf(two.template, fn);
      expect(role.Type).toBe('AWS::IAM::Role');
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
        { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ]);
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  it('lets no role use a `*` action or a `*` resource, nor any bucket but the stores and the control bucket', () => {
    for (const fn of FUNCTIONS) {
      for (const line of grants(roleOf(two.template, fn)[1])) {
        const [action, resource] = line.split(' on ') as [string, string];
        expect({ fn, action, star: action.includes('*') }).toEqual({ fn, action, star: false });
        expect({ fn, resource, star: resource === '*' || /s3:::[^/]*\*/.test(resource) }).toEqual({ fn, resource, star: false });
        expect(resource).not.toContain('s3-dfs-dev-logs');
      }
    }
  });

  it.each(FUNCTIONS)('allows %s exactly the actions its code uses, on exactly its resources', (fn) => {
    expect(grants(roleOf(two.template, fn)[1])).toEqual(expectedGrants(fn, [...STORES_TWO, 's3-dfs-dev-control']));
  });

  it('replicates on created and removed objects of every store, each bucket declared once, S3 allowed to invoke', () => {
    const buckets = namedBuckets(two.template).map(([, b]) => b.Properties.BucketName);
    expect(new Set(buckets).size).toBe(buckets.length);
    const permissions = ofType(two.template, 'AWS::Lambda::Permission').map(([, p]) => p.Properties);
    for (const name of STORES_TWO) {
      const [, b] = bucketNamed(two.template, name);
      const events = b.Properties.NotificationConfiguration.LambdaConfigurations.map((c: { Event: string; Function: unknown }) => [
        c.Event,
        JSON.stringify(c.Function),
      ]);
      expect(events).toEqual([
        ['s3:ObjectCreated:*', JSON.stringify({ 'Fn::GetAtt': ['ReplicateLambdaFunction', 'Arn'] })],
        ['s3:ObjectRemoved:*', JSON.stringify({ 'Fn::GetAtt': ['ReplicateLambdaFunction', 'Arn'] })],
      ]);
      const invoke = permissions.filter((p) => p.Principal === 's3.amazonaws.com' && JSON.stringify(p.SourceArn).includes(`:s3:::${name}"`));
      expect(invoke).toHaveLength(1);
      expect(invoke[0]).toMatchObject({
        Action: 'lambda:InvokeFunction',
        FunctionName: { 'Fn::GetAtt': ['ReplicateLambdaFunction', 'Arn'] },
        SourceAccount: { Ref: 'AWS::AccountId' },
      });
      // The notification is checked against the permission when the bucket is made.
      expect(dependsOn(b).some((d) => two.template.Resources[d]?.Type === 'AWS::Lambda::Permission')).toBe(true);
    }
    expect(two.template.Resources.ReplicateLambdaFunction!.Properties.Environment.Variables.DFS_S3_FLAVOR).toBe('aws');
  });

  it('sends replicate events and reconcile runs that failed every retry to queues of their own, and schedules reconcile', () => {
    const configs = Object.fromEntries(
      ofType(two.template, 'AWS::Lambda::EventInvokeConfig').map(([, c]) => [c.Properties.FunctionName.Ref, c.Properties]),
    );
    expect(configs.ReplicateLambdaFunction).toMatchObject({
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['ReplicationFailures', 'Arn'] } } },
    });
    expect(configs.ReconcileLambdaFunction).toMatchObject({
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['ReconcileFailures', 'Arn'] } } },
    });
    // Lambda sends with the function's role (the grants test checks sqs:SendMessage on each).
    const [[, rule]] = ofType(two.template, 'AWS::Events::Rule') as [[string, Resource]];
    expect(rule.Properties.ScheduleExpression).toBe('rate(1 hour)');
  });

  it('encrypts every queue', () => {
    const queues = ofType(two.template, 'AWS::SQS::Queue');
    expect(queues.map(([id]) => id).sort()).toEqual(['ReconcileFailures', 'ReplicationFailures']);
    for (const [id, q] of queues) {
      expect({ id, encrypted: q.Properties.SqsManagedSseEnabled === true || Boolean(q.Properties.KmsMasterKeyId) }).toEqual({ id, encrypted: true });
    }
  });

  it('alarms on a message in either failure queue and on any replicate error, with no actions without alarmTopicArn', () => {
    const alarms = ofType(two.template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    const on = (namespace: string, metric: string, dimension: unknown) =>
      alarms.filter((a) => a.Namespace === namespace && a.MetricName === metric && JSON.stringify(a.Dimensions[0].Value) === JSON.stringify(dimension));
    for (const queue of ['ReplicationFailures', 'ReconcileFailures']) {
      const [alarm, ...more] = on('AWS/SQS', 'ApproximateNumberOfMessagesVisible', { 'Fn::GetAtt': [queue, 'QueueName'] });
      expect(more).toEqual([]);
      expect(alarm).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    }
    const [errors] = on('AWS/Lambda', 'Errors', { Ref: 'ReplicateLambdaFunction' });
    expect(errors).toMatchObject({ Statistic: 'Sum', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
    expect(alarms).toHaveLength(3);
    for (const a of alarms) expect([a.AlarmActions, a.OKActions]).toEqual([undefined, undefined]);
  });

  it('packages each function in its own zip holding one minified bundle, no source map and no node_modules', () => {
    expect(Object.keys(two.zips).sort()).toEqual(FUNCTIONS.map((fn) => `${fn}.zip`).sort());
    for (const fn of FUNCTIONS) {
      const entries = zipEntries(two.zips[`${fn}.zip`]!);
      expect([...entries.keys()]).toEqual([`handlers/${fn}.js`]);
      const js = entries.get(`handlers/${fn}.js`)!().toString('utf8');
      expect(js).not.toMatch(/sourceMappingURL/);
      // Minified: a few long lines, not one per statement.
      expect(js.length / js.split('\n').length).toBeGreaterThan(2000);
    }
    expect(apiEnv(two.template).NODE_OPTIONS ?? '').not.toMatch(/enable-source-maps/);
  });

  it('bundles every package the functions import, the SDK included, at the version package-lock.json pins', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')).packages;
    const installed = (pkg: string) => JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
    // The version client-s3 writes into its own code (not always its package's: it is baked in).
    const s3CodeVersion = /var version = "([^"]+)"/.exec(readFileSync(join(ROOT, 'node_modules/@aws-sdk/client-s3/dist-cjs/index.js'), 'utf8'))![1];
    for (const pkg of ['@aws-sdk/client-s3', '@aws-sdk/client-sqs', '@aws-sdk/lib-storage', '@aws-sdk/s3-request-presigner']) {
      expect(installed(pkg)).toBe(lock[`node_modules/${pkg}`].version);
    }
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    for (const fn of FUNCTIONS) {
      const js = zipEntries(two.zips[`${fn}.zip`]!).get(`handlers/${fn}.js`)!().toString('utf8');
      // What is left to require at run time: Node's own modules only. (Not counted: the SDK's
      // error text that tells how to load the optional CRT signer, `[require("…");]`.)
      const required = [...js.matchAll(/\brequire\("([^"]+)"\)(?!;\])/g)].map((m) => m[1]!);
      expect({ fn, outside: [...new Set(required.filter((m) => !builtins.has(m)))] }).toEqual({ fn, outside: [] });
      // client-s3 itself (S3's API version and the SDK's version) and SQS's.
      expect(js).toContain('"2006-03-01"');
      expect(js).toContain(`"${s3CodeVersion}"`);
      expect(js).toContain('"2012-11-05"');
    }
    const api = zipEntries(two.zips['api.zip']!).get('handlers/api.js')!().toString('utf8');
    // The presigner, and lib-storage's Upload by one of its methods.
    expect(api).toMatch(/\bS3RequestPresigner\b/);
    expect(api).toContain('__doConcurrentUpload');
  });

  it('keeps the names of our functions in the bundles, so that stack traces show them', () => {
    const bundle = (fn: Fn) => zipEntries(two.zips[`${fn}.zip`]!).get(`handlers/${fn}.js`)!().toString('utf8');
    // handlers/http.ts and lib/replicate.ts, as a stack trace through them would name them.
    expect(bundle('api')).toMatch(/\bfunction errorResponse\(/);
    expect(bundle('replicate')).toMatch(/\bfunction replicateNotification\(/);
  });
});

describe('sls package with a third store and every param set', () => {
  it('adds the third store everywhere: bucket, DFS_STORES, IAM, logging and the TLS policy', () => {
    expect(namedBuckets(three.template).map(([, b]) => b.Properties.BucketName).sort()).toEqual([
      'acme-dfs-control',
      'acme-dfs-logs',
      ...STORES_THREE,
    ]);
    expect(parseStores(apiEnv(three.template).DFS_STORES!).map((s) => s.name)).toEqual(['server1', 'server2', 'server3']);
    for (const fn of FUNCTIONS) expect(grants(roleOf(three.template, fn)[1])).toEqual(expectedGrants(fn, [...STORES_THREE, 'acme-dfs-control']));
    const [id, b] = bucketNamed(three.template, 'acme-dfs-server3');
    expect(b.Properties.LoggingConfiguration.DestinationBucketName).toEqual({ Ref: 'AccessLogsBucket' });
    expect(deniesInsecureTransport(policiesOf(three.template, id), (s) => `arn:\${AWS::Partition}:s3:::acme-dfs-server3${s}`)).toBe(true);
  });

  it('admits the page from param webOrigins instead of the API\'s own origin, on every store', () => {
    for (const name of STORES_THREE) {
      expect(bucketNamed(three.template, name)[1].Properties.CorsConfiguration.CorsRules[0].AllowedOrigins).toEqual(['https://files.acme.example']);
    }
  });

  it('takes noncurrentDays, the throttling and the reserved concurrency from params, as numbers', () => {
    for (const name of STORES_THREE) {
      expect(bucketNamed(three.template, name)[1].Properties.LifecycleConfiguration.Rules).toContainEqual(
        expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 7 } }),
      );
    }
    expect(three.template.Resources.HttpApiStage!.Properties.DefaultRouteSettings).toMatchObject({
      ThrottlingRateLimit: 10,
      ThrottlingBurstLimit: 20,
    });
    expect(three.template.Resources.ApiLambdaFunction!.Properties.ReservedConcurrentExecutions).toBe(5);
  });

  it('makes every alarm notify alarmTopicArn when it fires and when it clears', () => {
    const alarms = ofType(three.template, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(alarms).toHaveLength(3);
    for (const a of alarms) expect([a.AlarmActions, a.OKActions]).toEqual([[TOPIC], [TOPIC]]);
  });
});
