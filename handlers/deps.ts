import { loadConfig } from '../lib/config';
import { createDeps, type Deps } from '../lib/deps';

let deps: Deps | undefined;

/** Built on first use, then reused for the life of the Lambda container. */
export function getDeps(): Deps {
  deps ??= createDeps(loadConfig(process.env));
  return deps;
}
