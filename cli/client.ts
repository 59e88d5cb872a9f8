/**
 * The two ways to reach the API behind one interface: HTTPS to API Gateway (the default) and the
 * Lambda Invoke API (`--via lambda`). Both answer `{status, body}` with `body` already parsed, so a
 * command cannot tell which one carried it. Downloads of presigned URLs live here too.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { DirectEvent } from '../lib/types';
import { encodeKeyPath } from '../lib/keys';
import { CliError, EXIT } from './exit';

/** One API operation; the direct-invoke event shape of lib/types.ts, so both transports share it. */
export type ApiOp = DirectEvent;

export interface ApiResult {
  status: number;
  body: unknown;
}

export interface Transport {
  send(op: ApiOp): Promise<ApiResult>;
}

export interface HttpOptions {
  endpoint: string;
  /** Where the endpoint was configured, named in "cannot reach" errors. */
  endpointFrom?: string;
  /** Default 60 s: API Gateway gives up at 29 s, so longer means the network is stuck. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** The HTTP request of each operation (the direct-invoke path hands the op over as it is). */
export function routeOf(op: ApiOp): { method: string; path: string } {
  switch (op.op) {
    case 'get':
      return { method: 'GET', path: `/files/${encodeKeyPath(op.key)}${op.meta ? '?meta=1' : ''}` };
    case 'list': {
      const query = new URLSearchParams();
      if (op.prefix !== undefined) query.set('prefix', op.prefix);
      if (op.after !== undefined) query.set('after', op.after);
      if (op.limit !== undefined) query.set('limit', String(op.limit));
      const q = query.toString();
      return { method: 'GET', path: `/files${q ? `?${q}` : ''}` };
    }
    default:
      return unreachable(op);
  }
}

function unreachable(op: never): never {
  throw new Error(`no HTTP route for op ${JSON.stringify((op as { op: unknown }).op)}`);
}

/** Talks to `{endpoint}/files/…`. Throws CliError (exit 1) when the API cannot be reached or does not answer JSON. */
export function httpTransport({ endpoint, endpointFrom = 'the default', timeoutMs = 60_000, fetch: doFetch = fetch }: HttpOptions): Transport {
  return {
    async send(op) {
      const { method, path } = routeOf(op);
      let res: Response;
      try {
        res = await doFetch(endpoint + path, {
          method,
          headers: { accept: 'application/json' },
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw networkError(err, endpoint, endpointFrom, timeoutMs);
      }
      const text = await res.text().catch((err: unknown) => {
        throw networkError(err, endpoint, endpointFrom, timeoutMs);
      });
      try {
        return { status: res.status, body: JSON.parse(text) as unknown };
      } catch {
        throw new CliError(EXIT.error, 'BadResponse', `${endpoint} answered ${res.status} without JSON; is it the dfs API? (endpoint from ${endpointFrom})`);
      }
    },
  };
}

function networkError(err: unknown, endpoint: string, from: string, timeoutMs: number): CliError {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') {
    return new CliError(EXIT.error, 'Network', `no answer from ${endpoint} within ${timeoutMs / 1000} s`, {}, { cause: err });
  }
  const why = e.cause?.code ?? e.cause?.message ?? (err as Error).message;
  return new CliError(
    EXIT.error,
    'Network',
    `cannot reach the API at ${endpoint} (${why}); the endpoint comes from ${from}. ` +
      'Start the local stack with `npm start`, or set --endpoint, DFS_ENDPOINT or the config file.',
    {},
    { cause: err },
  );
}

export interface LambdaOptions {
  endpoint: string;
  functionName: string;
}

/** True for endpoints on this machine, where the local stack accepts any credentials. */
export function isLocalEndpoint(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === 'localhost' || host.endsWith('.localhost') || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Invokes the API function directly (RequestResponse) with the op as payload; the function answers
 * `{statusCode, body}` (handlers/http.ts). A local endpoint gets dummy credentials and us-east-1;
 * any other uses the default AWS credential and region chain. The SDK is loaded only here, so
 * plain HTTP use never pays for it.
 */
export function lambdaTransport({ endpoint, functionName }: LambdaOptions): Transport {
  return {
    async send(op) {
      // The SDK's warning about its own future Node support is not something a dfs user can act on.
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
      const { LambdaClient, InvokeCommand } = await import('@aws-sdk/client-lambda');
      const local = isLocalEndpoint(endpoint);
      const client = new LambdaClient({
        endpoint,
        ...(local
          ? { region: 'us-east-1', credentials: { accessKeyId: 'dummy', secretAccessKey: 'dummy' }, maxAttempts: 1 }
          : {}),
      });
      let out;
      try {
        out = await client.send(
          new InvokeCommand({
            FunctionName: functionName,
            InvocationType: 'RequestResponse',
            Payload: new TextEncoder().encode(JSON.stringify(op)),
          }),
        );
      } catch (err) {
        const e = err as { name?: string; code?: string; message?: string };
        const why = e.code ?? e.name ?? 'error';
        throw new CliError(
          EXIT.error,
          'Network',
          `cannot invoke ${functionName} at ${endpoint} (${why}: ${e.message ?? ''}); ` +
            'set DFS_LAMBDA_ENDPOINT / DFS_FUNCTION or "lambdaEndpoint" / "functionName" in the config file',
          {},
          { cause: err },
        );
      } finally {
        client.destroy();
      }
      const payload = parseJson(out.Payload ? new TextDecoder().decode(out.Payload) : '');
      if (out.FunctionError) {
        const p = (payload ?? {}) as { errorType?: string; errorMessage?: string };
        throw new CliError(EXIT.error, 'FunctionError', `${functionName} failed: ${p.errorType ?? out.FunctionError}: ${p.errorMessage ?? ''}`);
      }
      const r = payload as { statusCode?: unknown; body?: unknown } | undefined;
      if (!r || typeof r.statusCode !== 'number') {
        throw new CliError(EXIT.error, 'BadResponse', `${functionName} answered without {statusCode, body}; is it the dfs API function?`);
      }
      // A function behind API Gateway answers a JSON string; the direct path answers an object.
      const body = typeof r.body === 'string' ? parseJson(r.body) ?? r.body : r.body;
      return { status: r.statusCode, body };
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Opens a presigned GET URL as a stream (never buffered whole). Throws CliError (exit 1) when the
 * URL cannot be fetched or is refused; a 403 usually means the link expired.
 */
export async function openDownload(url: string, doFetch: typeof fetch = fetch): Promise<Readable> {
  let res: Response;
  try {
    res = await doFetch(url);
  } catch (err) {
    const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(EXIT.error, 'DownloadFailed', `cannot download ${new URL(url).origin} (${why})`, {}, { cause: err });
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    const hint = res.status === 403 ? '; the link may have expired, run the command again' : '';
    throw new CliError(EXIT.error, 'DownloadFailed', `download refused (${res.status})${hint}`);
  }
  return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
}
