/**
 * HTTP requests with the two timeouts a user can reason about: connect (no TCP connection within
 * it: the host is down or filtered) and idle (connected, but nothing moved either way for that
 * long: the server or the network is stuck). A total time limit would cut off a healthy 1 GiB
 * download, so there is none. node:http rather than fetch, whose connect timeout cannot be set
 * without undici's own Agent.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Timeouts {
  /** No TCP connection within this long fails the request. */
  connectMs: number;
  /** Nothing received or sent for this long, once connected, fails the request. */
  idleMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = Object.freeze({ connectMs: 10_000, idleMs: 60_000 });

/** What a timeout rejects with: `code` says which one. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  constructor(
    readonly code: 'ConnectTimeout' | 'IdleTimeout',
    readonly ms: number,
  ) {
    super(code === 'ConnectTimeout' ? `no connection within ${ms / 1000} s` : `nothing received for ${ms / 1000} s`);
  }
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Uint8Array;
  signal?: AbortSignal;
  timeouts?: Timeouts;
}

/**
 * Sends a request and resolves with the response once its headers came; its body is the
 * IncomingMessage to read (the idle timeout keeps watching it). Rejects with TimeoutError, the
 * socket's error, or an AbortError when `signal` aborts.
 */
export function sendRequest(url: string, { method = 'GET', headers = {}, body, signal, timeouts = DEFAULT_TIMEOUTS }: RequestOptions = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method, headers: { ...headers, ...(body ? { 'content-length': body.byteLength } : {}) }, ...(signal ? { signal } : {}) });
    req.setTimeout(timeouts.idleMs, () => req.destroy(new TimeoutError('IdleTimeout', timeouts.idleMs)));
    req.on('socket', (socket) => {
      if (!socket.connecting) return; // a kept-alive connection
      const timer = setTimeout(() => req.destroy(new TimeoutError('ConnectTimeout', timeouts.connectMs)), timeouts.connectMs);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    req.on('response', (res) => {
      // The response's own errors (a reset mid-body) reach whoever reads it.
      res.on('error', () => undefined);
      resolve(res);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Reads a whole (small) response body as text. */
export async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A `fetch` over sendRequest, for the API's small JSON answers: the transport keeps one code path
 * whether it runs on this or on a fetch a test injects.
 */
export function fetchWithTimeouts(timeouts: Timeouts): typeof fetch {
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const res = await sendRequest(String(input), {
      method: init.method ?? 'GET',
      headers,
      ...(init.body ? { body: init.body as Uint8Array } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
      timeouts,
    });
    const text = await readText(res);
    const out = new Headers();
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
    return new Response(res.statusCode === 204 || res.statusCode === 304 ? null : text, { status: res.statusCode ?? 0, headers: out });
  }) as typeof fetch;
}
