import type { z } from 'zod';
import { BadRequestError } from './errors';

/** Validates a JSON body against `schema`, turning every problem into one clear BadRequestError. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  throw new BadRequestError(r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
}
