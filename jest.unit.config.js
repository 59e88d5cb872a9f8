/**
 * The unit project of jest.config.js as a config of its own, for StrykerJS (stryker.config.mjs):
 * its jest runner takes one config, not a project of a multi-project one.
 */
const { projects } = require('./jest.config.js');

const { displayName, ...unit } = projects.find((p) => p.displayName === 'unit');
module.exports = unit;
