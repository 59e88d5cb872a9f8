import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export interface ApiEventOptions {
  /** Query parameters: in `queryStringParameters` and, encoded, in `rawQueryString`. */
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
  /** The Authorization header; default AUTH (the write token `tester`), null for none. */
  auth?: string | null;
}

/**
 * An API Gateway HTTP API (payload 2.0) event, as the Lambda receives it; `rawPath` is
 * percent-encoded as a browser sends it.
 */
export function apiEvent(method: string, rawPath: string, { query, headers = {}, body, isBase64Encoded = false, auth = AUTH }: ApiEventOptions = {}): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { ...(auth ? { authorization: auth } : {}), ...headers },
    ...(query ? { queryStringParameters: query } : {}),
    ...(body !== undefined ? { body } : {}),
    isBase64Encoded,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'jest' },
      requestId: 'req-1',
      routeKey: '$default',
      stage: '$default',
      time: '01/Jan/2026:00:00:00 +0000',
      timeEpoch: 0,
    },
  };
}

/**
 * A write token the tests sign requests with, and its record as lib/tokens.ts keeps it in the
 * control bucket (`tokens/tester`): put the record where the API reads tokens, and send
 * `authorization: AUTH` (apiEvent does unless told otherwise).
 */
export const TEST_TOKEN = `dfs_tester_${'A'.repeat(43)}`;
export const AUTH = `Bearer ${TEST_TOKEN}`;
/** A read token, `reader`. */
export const READ_TOKEN = `dfs_reader_${'B'.repeat(43)}`;
export const READ_AUTH = `Bearer ${READ_TOKEN}`;

/** The record lib/tokens.ts keeps for `token` (`dfs_<name>_<secret>`): the secret's SHA-256 only. */
export function tokenRecord(token: string, scope: 'read' | 'write'): string {
  const [, name, secret] = /^dfs_([a-z0-9-]+)_(.+)$/.exec(token)!;
  return JSON.stringify({ name, scope, hash: createHash('sha256').update(secret!).digest('hex'), created: '2026-01-01T00:00:00.000Z', createdBy: 'test' });
}

/** Token records by key under the control bucket: a write token `tester` and a read token `reader`. */
export function testTokenRecords(): Record<string, string> {
  return { 'tokens/tester': tokenRecord(TEST_TOKEN, 'write'), 'tokens/reader': tokenRecord(READ_TOKEN, 'read') };
}

/**
 * Puts testTokenRecords() with `put(key, text)`: `fake.put('control', …)` for a FakeS3, a
 * PutObject into the control bucket for s3rver.
 */
export async function putTestTokens(put: (key: string, text: string) => unknown): Promise<void> {
  for (const [key, text] of Object.entries(testTokenRecords())) await put(key, text);
}

/** A direct invoke's event: the request shape handlers/http.ts takes without API Gateway. */
export interface DirectEvent {
  method: string;
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | object;
  isBase64Encoded?: boolean;
}
