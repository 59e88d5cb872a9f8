'use strict';
/**
 * Numbers from serverless params. A default in serverless.yml is a YAML number, but
 * `--param="name=10"` hands over the string "10": CloudFormation would take either, serverless's
 * schema and our tests would not, and "ten" would only fail at deploy time. Checked here instead.
 */

/**
 * `param:<name>` as a number of at least `min`, whole unless `whole` is false; throws with the
 * param's name otherwise.
 */
async function numberParam({ resolveVariable }, name, { min = 1, whole = true } = {}) {
  const value = await resolveVariable(`param:${name}`);
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < min || (whole && !Number.isInteger(n))) {
    throw new Error(`param ${name} must be ${whole ? 'a whole number' : 'a number'} of at least ${min}, not "${value}"`);
  }
  return n;
}

module.exports = { numberParam };
