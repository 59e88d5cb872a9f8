/**
 * The real API Lambda (handlers/api.ts) behind the fake API of test/helpers/cli.ts: each request
 * the CLI sends becomes the API Gateway (HTTP API, payload 2.0) event the Lambda would receive,
 * and the Lambda's result becomes the HTTP response, so a CLI test runs the whole server path
 * in-process, without sls offline. The token is the CLI's own `Authorization` header, as API
 * Gateway passes it: give the CLI one (DFS_TOKEN=TEST_TOKEN, whose record testTokenRecords()
 * gives), or the API answers 401.
 */
import type { ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { apiEvent } from './apigw';
import type { ApiHandler, SeenRequest } from './cli';

/** A Lambda handler taking API Gateway events, as handlers/api.ts exports it. */
export type LambdaApi = (event: APIGatewayProxyEventV2) => Promise<unknown>;

/**
 * The event API Gateway makes of `req`: path as sent (percent-encoded), query, lower-case headers
 * (the CLI's Authorization among them, none added), body in base64.
 */
export function toApiGatewayEvent(req: SeenRequest): APIGatewayProxyEventV2 {
  const url = new URL(req.url, 'http://api.example.com');
  const query = url.search ? Object.fromEntries(url.searchParams) : undefined;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  return apiEvent(req.method, url.pathname, {
    auth: null,
    headers,
    ...(query ? { query } : {}),
    ...(req.body.length > 0 ? { body: req.body.toString('base64'), isBase64Encoded: true } : {}),
  });
}

/**
 * A fake-API handler that serves every request with `lambda`. A Lambda that throws is answered
 * as API Gateway does: 500 `{"message":"Internal Server Error"}`.
 */
export function serveLambda(lambda: LambdaApi): ApiHandler {
  return (req, res) => {
    lambda(toApiGatewayEvent(req)).then(
      (result) => send(res, result as APIGatewayProxyStructuredResultV2),
      () => send(res, { statusCode: 500, headers: { 'content-type': 'application/json' }, body: '{"message":"Internal Server Error"}' }),
    );
  };
}

function send(res: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const body = result.body === undefined ? '' : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  res.writeHead(result.statusCode ?? 200, { ...(result.headers as Record<string, string> | undefined), 'content-length': String(body.length) });
  res.end(body);
}
