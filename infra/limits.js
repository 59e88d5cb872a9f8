'use strict';
/**
 * How much the API may take: API Gateway's throttling of the HTTP API stage and the api
 * function's reserved concurrency (params `apiRateLimit`, `apiBurstLimit`, `apiConcurrency`,
 * explained in serverless.yml).
 */
const { numberParam } = require('./params');

/** `functions.api.reservedConcurrency`. */
async function apiConcurrency(ctx) {
  return numberParam(ctx, 'apiConcurrency');
}

/**
 * `resources.extensions:` serverless v3 has no setting for an HTTP API's throttling, so the stage
 * it generates (`HttpApiStage`) is patched. An extension replaces the whole DefaultRouteSettings,
 * so the one setting serverless puts there, detailed metrics, is carried over.
 */
async function extensions(ctx) {
  return {
    HttpApiStage: {
      Properties: {
        DefaultRouteSettings: {
          DetailedMetricsEnabled: Boolean(await ctx.resolveVariable('self:provider.httpApi.metrics, false')),
          ThrottlingRateLimit: await numberParam(ctx, 'apiRateLimit', { whole: false }),
          ThrottlingBurstLimit: await numberParam(ctx, 'apiBurstLimit'),
        },
      },
    },
  };
}

module.exports = { apiConcurrency, extensions };
