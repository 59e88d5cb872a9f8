'use strict';
/**
 * A serverless plugin that makes `sls offline` route paths as API Gateway does: a trailing "/"
 * stays part of the path. serverless-offline builds its hapi server with stripTrailingSlash
 * hard-coded, so the handler saw "/files/a/" as "/files/a": a PUT stored another key than the
 * one sent, and a DELETE removed it. Deployed, the handler refuses such a key (400 InvalidKey);
 * locally it must too.
 *
 * Why this way: serverless-offline exposes neither the server nor the option, and it is ES
 * modules, which cannot be patched. hapi is CommonJS, shared through the module cache, so its
 * request class can be: every URL it parses keeps its slash. Patched only when `offline start`
 * runs, so `sls package` and `sls deploy` load nothing more.
 */
const path = require('node:path');

const PATCHED = Symbol.for('s3-dfs.offline-like-api-gateway');

function hapiRequestClass() {
  // serverless-offline exports no package.json; its CommonJS entry is src/index.cjs.
  const offline = path.dirname(path.dirname(require.resolve('serverless-offline')));
  const hapi = path.dirname(require.resolve('@hapi/hapi/package.json', { paths: [offline] }));
  return require(path.join(hapi, 'lib', 'request.js'));
}

function keepTrailingSlashes() {
  const Request = hapiRequestClass();
  if (Request.prototype[PATCHED]) return;
  // Every parse of the URL (routing, and request.url, which serverless-offline reads) ends here.
  const normalizePath = Request.prototype._normalizePath;
  if (typeof normalizePath !== 'function') {
    throw new Error('infra/offline-like-api-gateway.js: @hapi/hapi has no Request#_normalizePath any more; update the patch for this hapi version');
  }
  Request.prototype._normalizePath = function normalizePathKeepingSlash(url, options) {
    return normalizePath.call(this, url, { ...options, stripTrailingSlash: false });
  };
  Request.prototype[PATCHED] = true;
}

class OfflineLikeApiGatewayPlugin {
  constructor() {
    this.hooks = { 'before:offline:start:init': keepTrailingSlashes, 'before:offline:start': keepTrailingSlashes };
  }
}

module.exports = OfflineLikeApiGatewayPlugin;
