'use strict';
/**
 * A serverless plugin for the local stack: the CORS rules infra/stores.js gives the store
 * buckets (the web page's origin may PUT parts and GET large files, and read the ETag) are put on
 * the local s3rver's buckets too, through S3's own PutBucketCors, once serverless-s3-local has
 * started it. serverless-s3-local applies only one static CORS file to every bucket, while the
 * page's local origin carries the port the stack was started on. Listed after
 * serverless-s3-local, so its hook of the same event runs after the buckets exist.
 */
const { S3Client, PutBucketCorsCommand } = require('@aws-sdk/client-s3');

/** CloudFormation's CorsConfiguration in the shape of PutBucketCors. */
const corsOf = ({ CorsRules }) => ({
  CORSRules: CorsRules.map((r) => ({
    ...(r.Id ? { ID: r.Id } : {}),
    AllowedOrigins: r.AllowedOrigins,
    AllowedMethods: r.AllowedMethods,
    ...(r.AllowedHeaders ? { AllowedHeaders: r.AllowedHeaders } : {}),
    ...(r.ExposedHeaders ? { ExposeHeaders: r.ExposedHeaders } : {}),
    ...(r.MaxAge !== undefined ? { MaxAgeSeconds: r.MaxAge } : {}),
  })),
});

class S3rverCorsPlugin {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = { 'before:offline:start:init': () => this.applyCors() };
  }

  async applyCors() {
    const resources = this.serverless.service.resources?.Resources ?? {};
    const buckets = Object.values(resources).filter((r) => r?.Type === 'AWS::S3::Bucket' && r.Properties?.CorsConfiguration);
    if (buckets.length === 0) return;
    const port = this.serverless.service.custom?.s3?.port ?? 4569;
    const s3 = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    try {
      for (const b of buckets) {
        const origins = b.Properties.CorsConfiguration.CorsRules.flatMap((r) => r.AllowedOrigins);
        if (origins.some((o) => typeof o !== 'string')) {
          throw new Error(`bucket ${b.Properties.BucketName}: the local stack needs param webOrigins (the API's origin is only known deployed)`);
        }
        await s3.send(new PutBucketCorsCommand({ Bucket: b.Properties.BucketName, CORSConfiguration: corsOf(b.Properties.CorsConfiguration) }));
      }
    } finally {
      s3.destroy();
    }
  }
}

module.exports = S3rverCorsPlugin;
