/** Types of infra/params.js. */

/** What serverless v3 passes to a function of a `${file(...):name}` module. */
export interface VariableContext {
  resolveVariable(address: string): Promise<unknown>;
  options?: Record<string, unknown>;
}

/** `param:<name>` as a number of at least `min` (1), whole unless `whole` is false; throws otherwise. */
export function numberParam(ctx: VariableContext, name: string, opts?: { min?: number; whole?: boolean }): Promise<number>;
