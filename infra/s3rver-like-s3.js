'use strict';
/**
 * A serverless plugin without commands or hooks: the s3rver that serverless-s3-local starts
 * inside `sls offline start` keeps S3's promises (conditional writes, whole objects, exact event
 * sequencers, keys it cannot store refused instead of crashing sls): scripts/s3rver-like-s3.ts.
 *
 * Why this way: serverless-s3-local builds and runs its s3rver inside its own hook and exposes
 * neither, so the one seam is the s3rver class it loads from node_modules. Wrapping that class's
 * run() here patches every s3rver of the process before it listens (Koa composes its middleware
 * then). The plugin is listed before serverless-s3-local so the wrap is in place before any of
 * its hooks. The TypeScript module is compiled by tsx only when an s3rver runs, so
 * `sls package` and `sls deploy` load nothing more than s3rver, which serverless-s3-local
 * loads anyway.
 */
const path = require('node:path');

const WRAPPED = Symbol.for('s3-dfs.s3rver-like-s3.run');

/** The s3rver module serverless-s3-local runs; it must be the one this plugin wraps. */
function s3rverOfS3Local() {
  const ours = require.resolve('s3rver');
  const theirs = require.resolve('s3rver', { paths: [path.dirname(require.resolve('serverless-s3-local'))] });
  if (ours !== theirs) {
    throw new Error(
      `serverless-s3-local runs ${theirs}, not ${ours}: infra/s3rver-like-s3.js would not patch it. ` +
        'Align the s3rver versions in package.json so npm installs one copy.',
    );
  }
  return require(ours);
}

/**
 * scripts/s3rver-like-s3.ts, compiled by tsx on first use. Not through tsx's scoped require: that
 * loads the module's own dependencies afresh, so s3rver's error class would be a second copy,
 * which s3rver's error handler does not recognise (every refusal became a 500 InternalError).
 */
function loadPatch() {
  const unregister = require('tsx/cjs/api').register();
  try {
    return require('../scripts/s3rver-like-s3.ts');
  } finally {
    unregister();
  }
}

class S3rverLikeS3Plugin {
  constructor() {
    const S3rver = s3rverOfS3Local();
    if (S3rver.prototype[WRAPPED]) return;
    const run = S3rver.prototype.run;
    S3rver.prototype.run = function runLikeS3(...args) {
      loadPatch().makeS3rverLikeS3(this);
      return run.apply(this, args);
    };
    S3rver.prototype[WRAPPED] = true;
  }
}

module.exports = S3rverLikeS3Plugin;
