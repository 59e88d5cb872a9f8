import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/** A store as configured: a name users see and the bucket behind it. */
export interface StoreConfig {
  name: string;
  bucket: string;
  /** Only for stores outside the Lambda's region. */
  region?: string;
  /** Only for local or S3-compatible stores (s3rver in the local stack, tests). */
  endpoint?: string;
}

export type S3Flavor = 'aws' | 's3rver';

export interface Config {
  stores: StoreConfig[];
  controlBucket: string;
  /** Body bytes inlined (base64) in one read answer; beyond it presigned URLs. */
  inlineLimit: number;
  /** Largest body accepted inline by PUT /files; larger files go through POST /uploads. */
  putInlineLimit: number;
  /** Lifetime of presigned URLs, seconds. */
  urlExpirySeconds: number;
  /** Range size of the streamed byte compare; memory is bounded by twice this per pair. */
  compareChunkBytes: number;
  /** Key of the listing cursor MAC; absent: a random one the stack keeps (lib/secrets.ts). */
  cursorSecret?: string;
  /**
   * Which S3 we talk to. `s3rver` (the local stack) sends raw keys in its events where AWS
   * URL-encodes them, and decodes CopySource with decodeURI; both are set here, never guessed.
   */
  flavor: S3Flavor;
  /** Endpoint override applied to every store without its own (the local stack). */
  s3Endpoint?: string;
  /** The replicate function's maximum event age plus its retries, ms (lib/sync.ts orphanMadeAt). */
  eventMaxAgeMs: number;
  /** URL of the replication failure queue (SQS), replayed by reconcile. */
  failureQueueUrl?: string;
  /** The API function's own name, to go on with a long unlock by invoking itself. */
  selfFunction?: string;
  /** Lambda endpoint override (the local stack's serverless-offline). */
  lambdaEndpoint?: string;
  /**
   * The principals the system's own requests carry in S3 events (`userIdentity.principalId`, or
   * its prefix before `:<session>`): one per function role deployed, `AWS:dfs-system` locally.
   * A delete event by one of them is the system's; by anyone else, a user's (lib/tombstones.ts).
   */
  systemPrincipals: string[];
}

/** The access key the local stack's functions sign with: s3rver names it in their events. */
export const LOCAL_SYSTEM_ACCESS_KEY = 'dfs-system';

const DEFAULTS = Object.freeze({
  inlineLimit: 1024 * 1024,
  putInlineLimit: 4 * 1024 * 1024,
  urlExpirySeconds: 900,
  compareChunkBytes: 3 * 1024 * 1024,
  // serverless.yml's maximumEventAge (1 h), and the retries' last minutes.
  eventMaxAgeSeconds: 3900,
});

type Env = Record<string, string | undefined>;

export function requireEnv(env: Env, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new Error(`environment variable ${name} is required`);
  return value;
}

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

const STORE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Parses `DFS_STORES`: a JSON list of `{name, bucket}`, or `name=bucket,name=bucket`. */
export function parseStores(raw: string): StoreConfig[] {
  const list: StoreConfig[] = raw.trim().startsWith('[')
    ? (JSON.parse(raw) as StoreConfig[])
    : raw.split(',').map((pair) => {
        const [name = '', bucket = ''] = pair.split('=').map((s) => s.trim());
        return { name, bucket };
      });
  if (list.length === 0) throw new Error('DFS_STORES lists no store');
  const seen = new Set<string>();
  for (const s of list) {
    if (typeof s.name !== 'string' || !STORE_NAME.test(s.name)) throw new Error(`store name "${s.name}" must be lower-case letters, digits and "-"`);
    if (!s.bucket) throw new Error(`store ${s.name} has no bucket`);
    if (seen.has(s.name)) throw new Error(`store ${s.name} is listed twice`);
    seen.add(s.name);
  }
  return list;
}

function parseFlavor(raw: string | undefined): S3Flavor {
  if (raw === undefined || raw === '' || raw === 'aws') return 'aws';
  if (raw === 's3rver') return 's3rver';
  throw new Error(`DFS_S3_FLAVOR must be "aws" or "s3rver", got "${raw}"`);
}

/** Reads the configuration once, at cold start; throws on anything missing or malformed. */
export function loadConfig(env: Env = process.env): Config {
  const s3Endpoint = env.DFS_S3_ENDPOINT || undefined;
  return {
    stores: parseStores(requireEnv(env, 'DFS_STORES')),
    controlBucket: requireEnv(env, 'DFS_CONTROL_BUCKET'),
    inlineLimit: positiveInt(env, 'DFS_INLINE_LIMIT', DEFAULTS.inlineLimit),
    putInlineLimit: positiveInt(env, 'DFS_PUT_LIMIT', DEFAULTS.putInlineLimit),
    urlExpirySeconds: positiveInt(env, 'DFS_URL_EXPIRY', DEFAULTS.urlExpirySeconds),
    compareChunkBytes: positiveInt(env, 'DFS_COMPARE_CHUNK', DEFAULTS.compareChunkBytes),
    flavor: parseFlavor(env.DFS_S3_FLAVOR),
    ...(env.DFS_CURSOR_SECRET ? { cursorSecret: env.DFS_CURSOR_SECRET } : {}),
    eventMaxAgeMs: positiveInt(env, 'DFS_EVENT_MAX_AGE', DEFAULTS.eventMaxAgeSeconds) * 1000,
    ...(env.DFS_FAILURE_QUEUE_URL ? { failureQueueUrl: env.DFS_FAILURE_QUEUE_URL } : {}),
    ...(env.DFS_SELF_FUNCTION ? { selfFunction: env.DFS_SELF_FUNCTION } : {}),
    ...(env.DFS_LAMBDA_ENDPOINT ? { lambdaEndpoint: env.DFS_LAMBDA_ENDPOINT } : {}),
    ...(s3Endpoint ? { s3Endpoint } : {}),
    systemPrincipals: parsePrincipals(env.DFS_SYSTEM_PRINCIPALS),
  };
}

function parsePrincipals(raw: string | undefined): string[] {
  const list = (raw ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
  const bad = list.find((p) => !/^AWS:[A-Za-z0-9+=,.@_-]+$/.test(p));
  if (bad !== undefined) throw new Error(`DFS_SYSTEM_PRINCIPALS lists "${bad}": each is AWS: and a role's or user's unique id`);
  return list;
}

/**
 * S3 client settings. With an endpoint (s3rver) we go path-style, send no flexible checksums
 * (s3rver would store a streamed body with its aws-chunked framing) and use s3rver's fixed keys.
 */
export interface ClientOptions {
  region?: string;
  endpoint?: string;
  requestChecksumCalculation?: 'WHEN_REQUIRED';
  /** The system's own client: on s3rver it signs with LOCAL_SYSTEM_ACCESS_KEY, users with S3RVER. */
  system?: boolean;
}

export function s3ClientConfig(opts: ClientOptions): S3ClientConfig {
  const base: S3ClientConfig = {
    region: opts.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(opts.requestChecksumCalculation ? { requestChecksumCalculation: opts.requestChecksumCalculation } : {}),
    // A store that does not answer must fail fast enough for the others to still answer.
    requestHandler: { connectionTimeout: 3000, requestTimeout: 60_000 },
  };
  if (!opts.endpoint) return base;
  return {
    ...base,
    endpoint: opts.endpoint,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: opts.system ? { accessKeyId: LOCAL_SYSTEM_ACCESS_KEY, secretAccessKey: LOCAL_SYSTEM_ACCESS_KEY } : { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 2,
  };
}

export function createS3Client(opts: ClientOptions): S3Client {
  return new S3Client(s3ClientConfig(opts));
}
