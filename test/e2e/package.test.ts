import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseStores } from '../../lib/config';

const ROOT = resolve(__dirname, '../..');
const SLS = join(ROOT, 'node_modules', '.bin', 'sls');

interface Resource {
  Type: string;
  Properties: Record<string, any>;
}
interface Template {
  Resources: Record<string, Resource>;
}

/**
 * `sls package --stage dev` into a temporary folder, with no AWS credentials at all: a
 * template that needed an AWS call (`${aws:accountId}`, SSM, CloudFormation outputs) fails here.
 */
async function slsPackage(name: string, args: string[] = []): Promise<{ template: Template; zip: Buffer }> {
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
    return {
      template: JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template,
      zip: readFileSync(join(dir, 's3-dfs.zip')),
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

/** Entry names from a zip's central directory. */
function zipEntryNames(zip: Buffer): string[] {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('bad central directory entry');
    const nameLength = zip.readUInt16LE(at + 28);
    const skip = zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    names.push(zip.toString('utf8', at + 46, at + 46 + nameLength));
    at += 46 + nameLength + skip;
  }
  return names;
}

const ofType = (t: Template, type: string) => Object.values(t.Resources).filter((r) => r.Type === type);
const storeBuckets = (t: Template) =>
  ofType(t, 'AWS::S3::Bucket').filter((b) => typeof b.Properties?.BucketName === 'string');
const apiEnv = (t: Template) => t.Resources.ApiLambdaFunction!.Properties.Environment.Variables as Record<string, string>;
const s3Statements = (t: Template) =>
  (t.Resources.IamRoleLambdaExecution!.Properties.Policies[0].PolicyDocument.Statement as any[]).filter((s) =>
    ([] as string[]).concat(s.Action).some((a: string) => a.startsWith('s3:')),
  );

let two: { template: Template; zip: Buffer };
let three: { template: Template; zip: Buffer };

// One after the other: serverless-esbuild stages every zip in the project's .serverless/
// whatever --package says, and each run removes it when done.
beforeAll(async () => {
  two = await slsPackage('two');
  three = await slsPackage('three', ['--param=stores=server1,server2,server3', '--param=bucketPrefix=acme-dfs']);
}, 180_000);

describe('sls package --stage dev', () => {
  it('makes one bucket per store and a control bucket, named after the stage', () => {
    expect(storeBuckets(two.template).map((b) => b.Properties.BucketName).sort()).toEqual([
      's3-dfs-dev-control',
      's3-dfs-dev-server1',
      's3-dfs-dev-server2',
    ]);
  });

  it('keeps every bucket private and encrypted with SSE-S3 (AES256), never KMS', () => {
    for (const b of storeBuckets(two.template)) {
      expect(b.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
        { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
      ]);
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
    }
    expect(JSON.stringify(two.template)).not.toMatch(/aws:kms/);
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

  it('routes GET /files/{key+} of an HTTP API with payload 2.0 to the api function', () => {
    const routes = ofType(two.template, 'AWS::ApiGatewayV2::Route').map((r) => r.Properties.RouteKey);
    expect(routes).toContain('GET /files/{key+}');
    const [integration] = ofType(two.template, 'AWS::ApiGatewayV2::Integration');
    expect(integration!.Properties.PayloadFormatVersion).toBe('2.0');
    expect(ofType(two.template, 'AWS::ApiGatewayV2::Api')[0]!.Properties.ProtocolType).toBe('HTTP');
  });

  it('lets the function touch objects of its own buckets only', () => {
    const statements = s3Statements(two.template);
    const resources = JSON.stringify(statements.map((s) => s.Resource));
    for (const b of ['s3-dfs-dev-server1', 's3-dfs-dev-server2', 's3-dfs-dev-control']) expect(resources).toContain(`s3:::${b}`);
    for (const s of statements) {
      expect(s.Effect).toBe('Allow');
      expect(s.Resource).not.toContain('*');
      expect(s.Action.every((a: string) => !a.includes('*'))).toBe(true);
    }
    expect(statements.flatMap((s) => s.Action).sort()).toEqual([
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:GetObject',
      's3:ListBucket',
      's3:ListMultipartUploadParts',
      's3:PutObject',
    ]);
  });

  it('replicates on created and removed objects of every store, each bucket declared once', () => {
    const buckets = ofType(two.template, 'AWS::S3::Bucket').map((b) => b.Properties.BucketName).filter(Boolean);
    expect(new Set(buckets).size).toBe(buckets.length);
    for (const b of storeBuckets(two.template).filter((x) => !x.Properties.BucketName.endsWith('-control'))) {
      const events = b.Properties.NotificationConfiguration.LambdaConfigurations.map((c: { Event: string; Function: unknown }) => [
        c.Event,
        JSON.stringify(c.Function),
      ]);
      expect(events).toEqual([
        ['s3:ObjectCreated:*', JSON.stringify({ 'Fn::GetAtt': ['ReplicateLambdaFunction', 'Arn'] })],
        ['s3:ObjectRemoved:*', JSON.stringify({ 'Fn::GetAtt': ['ReplicateLambdaFunction', 'Arn'] })],
      ]);
    }
    expect(two.template.Resources.ReplicateLambdaFunction!.Properties.Environment.Variables.DFS_S3_FLAVOR).toBe('aws');
  });

  it('sends events that failed every retry to a queue, and schedules reconcile', () => {
    const [conf] = ofType(two.template, 'AWS::Lambda::EventInvokeConfig');
    expect(conf!.Properties).toMatchObject({
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['ReplicationFailures', 'Arn'] } } },
    });
    const [rule] = ofType(two.template, 'AWS::Events::Rule');
    expect(rule!.Properties.ScheduleExpression).toBe('rate(1 hour)');
  });

  it('has no circular dependency: the role names buckets by ARN, not by reference', () => {
    const role = JSON.stringify(two.template.Resources.IamRoleLambdaExecution);
    for (const id of Object.keys(two.template.Resources).filter((k) => k.startsWith('S3Bucket'))) expect(role).not.toContain(id);
  });

  it('bundles the handler and leaves the SDK to the Lambda runtime', () => {
    const names = zipEntryNames(two.zip);
    expect(names).toContain('handlers/api.js');
    expect(names.filter((n) => n.includes('node_modules/'))).toEqual([]);
  });
});

describe('sls package with --param=stores=server1,server2,server3', () => {
  it('adds the third store everywhere: bucket, DFS_STORES and IAM', () => {
    expect(storeBuckets(three.template).map((b) => b.Properties.BucketName).sort()).toEqual([
      'acme-dfs-control',
      'acme-dfs-server1',
      'acme-dfs-server2',
      'acme-dfs-server3',
    ]);
    expect(parseStores(apiEnv(three.template).DFS_STORES!).map((s) => s.name)).toEqual(['server1', 'server2', 'server3']);
    expect(JSON.stringify(s3Statements(three.template))).toContain('s3:::acme-dfs-server3');
  });
});
