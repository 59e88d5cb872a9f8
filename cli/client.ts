/**
 * The two ways to reach the API behind one interface: HTTPS to API Gateway (the default) and the
 * Lambda Invoke API (`--via lambda`). Both answer `{status, body}` with `body` already parsed, so a
 * command cannot tell which one carried it; who may call is theirs to settle (a bearer token over
 * HTTP, IAM for an invoke), and a refusal of that is an exit-8 error, whatever the command.
 * Downloads of presigned URLs live here too.
 */
import type { Readable } from 'node:stream';
import { routeOf, type ApiOp, type ApiResult } from '../client/routes';
import type { PartSender as SharedPartSender } from '../client/multipart';
import type { Token } from './config';
import { CliError, EXIT, notAllowedError } from './exit';
import { DEFAULT_TIMEOUTS, fetchWithTimeouts, readText, sendRequest, TimeoutError, type Timeouts } from './http';

export { routeOf, type ApiOp, type ApiResult, type DonePart } from '../client/routes';
export type { PartOutcome } from '../client/multipart';

export interface SendOptions {
  /** Cancels the request (Ctrl-C); the promise then rejects with a CliError (exit 130). */
  signal?: AbortSignal;
}

export interface Transport {
  send(op: ApiOp, opts?: SendOptions): Promise<ApiResult>;
  /**
   * Who the server takes requests sent this way to be from, when the CLI can tell: the name in
   * the token (`dfs_<name>_…`), `lambda-invoke` for a direct invoke. Locks compare it with
   * their holder.
   */
  readonly who?: string;
}

export interface HttpOptions {
  endpoint: string;
  /** Where the endpoint was configured, named in "cannot reach" errors. */
  endpointFrom?: string;
  /** Connect and idle timeouts (cli/http.ts); default 10 s and 60 s. */
  timeouts?: Timeouts;
  /** Where the timeouts were configured, named when one expires. */
  timeoutsFrom?: string;
  /** A fetch of tests; by default requests go through cli/http.ts with `timeouts`. */
  fetch?: typeof fetch;
  /** Hears one line per request: method, path, status, time and request id; never a header's value. */
  debug?: (line: string) => void;
  /** Sent as `Authorization: Bearer …`; without one, no such header is sent. */
  token?: Token;
  /** The config file a token can go in, named when the API wants one (401). */
  configPath?: string;
}

/** The error a request cancelled through `SendOptions.signal` rejects with. */
export const interruptedError = (cause?: unknown) => new CliError(EXIT.interrupted, 'Interrupted', 'interrupted', {}, { cause });

/**
 * Talks to `{endpoint}/files/…`, with the token as a bearer header when there is one. Throws
 * CliError: exit 1 when the API cannot be reached or does not answer JSON; exit 8 when it
 * answers 401 or 403 (notAllowedError, saying where the token came from, never the token).
 */
export function httpTransport({ endpoint, endpointFrom = 'the default', timeouts = DEFAULT_TIMEOUTS, timeoutsFrom, fetch: injected, token, configPath, debug }: HttpOptions): Transport {
  const doFetch = injected ?? fetchWithTimeouts(timeouts);
  const fail = (err: unknown) => networkError(err, endpoint, endpointFrom, timeouts, timeoutsFrom);
  return {
    ...(token?.name !== undefined ? { who: token.name } : {}),
    async send(op, { signal } = {}) {
      const { method, path, headers, body } = routeOf(op);
      const started = Date.now();
      let res: Response;
      try {
        res = await doFetch(endpoint + path, {
          method,
          headers: { accept: 'application/json', ...headers, ...(token ? { authorization: token.authorization() } : {}) },
          ...(body ? { body } : {}),
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        if (signal?.aborted) throw interruptedError(err);
        debug?.(`${method} ${path} failed after ${Date.now() - started} ms: ${(err as Error).message}`);
        throw fail(err);
      }
      const text = await res.text().catch((err: unknown) => {
        if (signal?.aborted) throw interruptedError(err);
        throw fail(err);
      });
      debug?.(`${method} ${path} → ${res.status} in ${Date.now() - started} ms${requestIdOf(res.headers)}`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text) as unknown;
      } catch {
        if (res.status === 401 || res.status === 403) parsed = undefined;
        else throw new CliError(EXIT.error, 'BadResponse', `${endpoint} answered ${res.status} without JSON; is it the dfs API? (endpoint from ${endpointFrom})`);
      }
      if (res.status === 401 || res.status === 403) {
        throw notAllowedError(res.status, parsed, {
          ...(token ? { tokenFrom: token.from, fromLocalStack: token.fromLocalStack } : {}),
          ...(configPath !== undefined ? { configPath } : {}),
        });
      }
      return { status: res.status, body: parsed };
    },
  };
}

/** ` (request id …)` when the answer names one (API Gateway, Lambda, S3), else ''. */
function requestIdOf(headers: Headers): string {
  const id = headers.get('apigw-requestid') ?? headers.get('x-amzn-requestid') ?? headers.get('x-amz-request-id') ?? headers.get('x-request-id');
  return id ? ` (request id ${id})` : '';
}

const TIMEOUT_SETTINGS = 'DFS_CONNECT_TIMEOUT / DFS_IDLE_TIMEOUT or "connectTimeout" / "idleTimeout" (seconds) in the config file';

function networkError(err: unknown, endpoint: string, from: string, timeouts: Timeouts, timeoutsFrom = 'the defaults'): CliError {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (err instanceof TimeoutError) {
    const what = err.code === 'ConnectTimeout' ? `cannot connect to ${endpoint} within ${err.ms / 1000} s` : `${endpoint} stopped answering: nothing came for ${err.ms / 1000} s`;
    return new CliError(EXIT.error, 'Timeout', `${what} (timeouts from ${timeoutsFrom}; ${TIMEOUT_SETTINGS} change them)`, {}, { cause: err });
  }
  if (e.name === 'TimeoutError') {
    return new CliError(EXIT.error, 'Timeout', `no answer from ${endpoint} within ${timeouts.idleMs / 1000} s`, {}, { cause: err });
  }
  const why = e.cause?.code ?? e.cause?.message ?? (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  // Only the local stack is started with npm start; a remote endpoint is someone's deployed API.
  const hint = isLocalEndpoint(endpoint)
    ? 'Start the local stack with `npm start`, or set --endpoint, DFS_ENDPOINT or the config file.'
    : 'Check the URL and your network, or set --endpoint, DFS_ENDPOINT or the config file.';
  return new CliError(EXIT.error, 'Network', `cannot reach the API at ${endpoint} (${why}); the endpoint comes from ${from}. ${hint}`, {}, { cause: err });
}

/** A direct invoke's event: the request it stands for (handlers/http.ts `fromDirect`). */
export interface DirectRequest {
  method: string;
  /** Decoded, as the function matches routes: `/files/a b+c.txt`. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** The body's bytes in base64; absent, with `isBase64Encoded`, when the route sends none. */
  body?: string;
  isBase64Encoded?: true;
}

/**
 * The payload `--via lambda` sends for every operation: its HTTP request (`routeOf`) in the
 * direct-invoke shape, body base64-encoded. No Authorization header: IAM decides who may
 * invoke the function, and a token has no business in an invoke's payload.
 */
export function invokePayload(op: ApiOp): DirectRequest {
  const { method, path, headers = {}, body } = routeOf(op);
  // Split by hand: URL parsing would resolve "." segments and read "//" as a host.
  const [rawPath = path, rawQuery = ''] = path.split('?', 2);
  return {
    method,
    path: decodeURIComponent(rawPath),
    query: Object.fromEntries(new URLSearchParams(rawQuery)),
    headers: { ...headers },
    ...(body ? { body: Buffer.from(body).toString('base64'), isBase64Encoded: true as const } : {}),
  };
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
 * Invokes the API function directly (RequestResponse) with the op's request as payload
 * (`invokePayload`); the function answers `{statusCode, body}` (handlers/http.ts). IAM, not a
 * token, says who may: a refusal is exit 8. A local endpoint gets dummy credentials and
 * us-east-1; any other uses the default AWS credential and region chain. The SDK is loaded
 * only here, so plain HTTP use never pays for it.
 */
export function lambdaTransport({ endpoint, functionName }: LambdaOptions): Transport {
  return {
    who: 'lambda-invoke',
    async send(op, { signal } = {}) {
      if (signal?.aborted) throw interruptedError();
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
            Payload: new TextEncoder().encode(JSON.stringify(invokePayload(op))),
          }),
          signal ? { abortSignal: signal } : {},
        );
      } catch (err) {
        if (signal?.aborted) throw interruptedError(err);
        const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
        if (e.name === 'AccessDeniedException' || e.$metadata?.httpStatusCode === 403) {
          throw new CliError(
            EXIT.notAllowed,
            'AccessDenied',
            `not allowed to invoke ${functionName}: ${e.message ?? 'access denied'}; your AWS credentials need lambda:InvokeFunction on it`,
            {},
            { cause: err },
          );
        }
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
 * URL cannot be fetched or is refused; a 403 usually means the link expired. The idle timeout
 * watches the whole body: a download that stalls fails instead of hanging.
 */
export async function openDownload(url: string, timeouts: Timeouts = DEFAULT_TIMEOUTS, debug?: (line: string) => void): Promise<Readable> {
  const started = Date.now();
  const where = withoutQuery(url);
  let res;
  try {
    res = await sendRequest(url, { timeouts });
  } catch (err) {
    const why = err instanceof TimeoutError ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    throw new CliError(EXIT.error, 'DownloadFailed', `cannot download ${new URL(url).origin} (${why})`, {}, { cause: err });
  }
  const status = res.statusCode ?? 0;
  debug?.(`GET ${where} → ${status} in ${Date.now() - started} ms${res.headers['x-amz-request-id'] ? ` (request id ${String(res.headers['x-amz-request-id'])})` : ''}`);
  if (status < 200 || status >= 300) {
    await readText(res).catch(() => '');
    const hint = status === 403 ? '; the link may have expired, run the command again' : '';
    throw new CliError(EXIT.error, 'DownloadFailed', `download refused (${status})${hint}`);
  }
  return res;
}

/** A presigned URL without its query: the signature stays out of every message. */
export const withoutQuery = (url: string) => url.replace(/[?#].*$/, '');

/** The CLI's part upload: `uploadPart`, or a stand-in in tests. */
export type PartSender = SharedPartSender<Uint8Array>;

/**
 * The part upload of `dfs put`: `uploadPart` with the configured timeouts and debug lines.
 *
 * node:http rather than fetch: fetch copies a Uint8Array body before sending it, and those
 * copies, collected late, tripled the memory of a large upload. Here the part buffer itself is
 * written to the socket. Never rejects for a failed upload (the caller retries or gives up on
 * that store); rejects with the interrupted CliError when `signal` is aborted.
 */
export function partSender(timeouts: Timeouts = DEFAULT_TIMEOUTS, debug?: (line: string) => void): PartSender {
  return async (url, body, signal) => {
    if (signal.aborted) throw interruptedError();
    const started = Date.now();
    try {
      const res = await sendRequest(url, { method: 'PUT', body, signal, timeouts });
      // S3 answers a refusal with a small XML body whose <Code> says why (SignatureDoesNotMatch, NoSuchUpload…).
      const text = await readText(res);
      const status = res.statusCode ?? 0;
      const etag = res.headers.etag;
      debug?.(`PUT ${withoutQuery(url)} (${body.byteLength} bytes) → ${status} in ${Date.now() - started} ms`);
      if (status >= 200 && status < 300 && etag) return { ok: true, etag };
      if (status >= 200 && status < 300) return { ok: false, status, why: 'the answer carries no ETag header' };
      const code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1];
      return { ok: false, status, why: `HTTP ${status}${code ? ` ${code}` : ''}` };
    } catch (err) {
      if (signal.aborted) throw interruptedError(err);
      const e = err as Error & { code?: string };
      return { ok: false, why: err instanceof TimeoutError ? err.message : (e.code ?? e.message) };
    }
  };
}

/** PUTs one part with the default timeouts; see partSender. */
export const uploadPart: PartSender = partSender();
