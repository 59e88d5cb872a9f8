import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export interface ApiEventOptions {
  /** Query parameters: in `queryStringParameters` and, encoded, in `rawQueryString`. */
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}

/**
 * An API Gateway HTTP API (payload 2.0) event, as the Lambda receives it; `rawPath` is
 * percent-encoded as a browser sends it.
 */
export function apiEvent(method: string, rawPath: string, { query, headers = {}, body, isBase64Encoded = false }: ApiEventOptions = {}): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: new URLSearchParams(query).toString(),
    headers,
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
