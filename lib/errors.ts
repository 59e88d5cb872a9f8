/**
 * The closed set of errors the domain throws. Each one that a client may see carries the
 * HTTP status and the `error` code of the API contract; the mapping lives in lib/http.ts.
 */

export abstract class DfsError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A key that S3 would accept but the store refuses to hold (see lib/keys.ts). */
export class InvalidKeyError extends DfsError {
  readonly status = 400;
  readonly code = 'InvalidKey';
}

/** A malformed request: bad JSON, an unknown parameter value, an unknown operation. */
export class BadRequestError extends DfsError {
  readonly status = 400;
  readonly code = 'BadRequest';
}

export class UnknownStoreError extends DfsError {
  readonly status = 400;
  readonly code = 'UnknownStore';
}

/** No token, or one that is not (or no longer) valid. */
export class UnauthorizedError extends DfsError {
  readonly status = 401;
  readonly code = 'Unauthorized';
}

/** A valid token without the scope the request needs. */
export class ForbiddenError extends DfsError {
  readonly status = 403;
  readonly code = 'Forbidden';
}

export class NotFoundError extends DfsError {
  readonly status = 404;
  readonly code = 'NotFound';
}

/** The request is valid but a safety guard refuses it; the message says how to override. */
export class ConflictError extends DfsError {
  readonly status = 409;
  readonly code = 'Conflict';
}

/** No such route: a wrong endpoint or an old client, not a missing file. */
export class RouteNotFoundError extends DfsError {
  readonly status = 404;
  readonly code = 'NoRoute';
}

export class PayloadTooLargeError extends DfsError {
  readonly status = 413;
  readonly code = 'PayloadTooLarge';
}

/** No store answered at all, so nothing can be said about the key. */
export class AllStoresUnavailableError extends DfsError {
  readonly status = 503;
  readonly code = 'Unavailable';
  constructor(readonly unavailable: string[]) {
    super(`no store answered (${unavailable.join(', ')})`);
  }
}

/** Part of the stack itself (the control bucket, the failure queue) did not answer: try again. */
export class ServiceUnavailableError extends DfsError {
  readonly status = 503;
  readonly code = 'Unavailable';
  constructor(readonly what: string, options?: { cause?: unknown }) {
    super(`the stack's ${what} did not answer; nothing was done, try again`, options);
  }
}

/**
 * One store could not be reached or refused us (network, 5xx, throttling, access denied).
 * Never shown to a client on its own: it becomes an entry in `unavailable`.
 */
export class StoreUnavailableError extends Error {
  constructor(readonly store: string, options?: { cause?: unknown }) {
    super(`store ${store} is unavailable`, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * A conditional write found the object other than the caller saw it: another ETag (412), gone
 * (404 on If-Match), already there (412 on If-None-Match), or S3's 409 ConditionalRequestConflict
 * after our retries. The caller looks again and decides anew; never shown to a client on its own.
 */
export class ObjectChangedError extends Error {
  constructor(readonly store: string, readonly key: string, options?: { cause?: unknown }) {
    super(`${key} changed on ${store} since it was read`, options);
    this.name = 'ObjectChangedError';
  }
}

/** A write the rules would overrule at once: another store holds a newer version (use touch to make it newest). */
export class OverruledError extends DfsError {
  readonly status = 409;
  readonly code = 'Overruled';
  constructor(message: string, readonly newer: { store: string; mtime: string }) {
    super(message);
  }
}
