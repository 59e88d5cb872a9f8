'use strict';
/**
 * The web page, built at build time into the api function's bundle (serverless.yml
 * `custom.esbuild.plugins`): when esbuild meets web/bundled.ts, a placeholder, it builds
 * web/main.tsx (Preact, its CSS) and loads the result there instead, so `sls package`,
 * `sls deploy` and `sls offline` all serve the page that the sources make now, with nothing
 * fetched at run time. Each asset's name carries its content hash (lib/page.ts caches on that).
 */
const path = require('node:path');
const { gzipSync } = require('node:zlib');

const ROOT = path.resolve(__dirname, '..');
const PLACEHOLDER = /[\\/]web[\\/]bundled\.ts$/;

const TYPES = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
});

const file = (name, text) => ({
  type: TYPES[path.extname(name)],
  text,
  gzip: gzipSync(Buffer.from(text, 'utf8'), { level: 9 }).toString('base64'),
});

/** The index names its assets relatively, so the page also works below a base path. */
const indexHtml = (js, css) =>
  [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>s3-dfs</title>',
    `<link rel="stylesheet" href="assets/${css}">`,
    `<script type="module" src="assets/${js}"></script>`,
    '</head>',
    '<body>',
    '<div id="app"><noscript>This page needs JavaScript. The dfs command does the same without it.</noscript></div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');

/**
 * Builds the page: `{ files: { 'index.html', 'app.<hash>.js', 'app.<hash>.css' } }`, each with
 * its type, text and gzip (lib/page.ts PageBundle). `minify: false` is for reading the output.
 */
async function buildPage({ minify = true } = {}) {
  const esbuild = require('esbuild');
  const out = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: { app: 'web/main.tsx' },
    bundle: true,
    write: false,
    outdir: 'out',
    entryNames: '[name].[hash]',
    format: 'esm',
    target: ['chrome109', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify,
    legalComments: 'none',
    charset: 'utf8',
    logLevel: 'silent',
  });
  const files = {};
  for (const f of out.outputFiles) files[path.basename(f.path)] = file(path.basename(f.path), f.text);
  const names = Object.keys(files);
  const js = names.find((n) => n.endsWith('.js'));
  const css = names.find((n) => n.endsWith('.css'));
  if (!js || !css) throw new Error(`the page build made ${names.join(', ')}, not one .js and one .css`);
  files['index.html'] = file('index.html', indexHtml(js, css));
  return { files };
}

/** The esbuild plugin: web/bundled.ts becomes the built page. Built once per build (a watch rebuild builds it again). */
const webPagePlugin = {
  name: 's3-dfs-web-page',
  setup(build) {
    let built;
    build.onStart(() => {
      built = undefined;
    });
    build.onLoad({ filter: PLACEHOLDER }, async () => {
      built ??= buildPage();
      return { contents: `export const PAGE = ${JSON.stringify(await built)};\n`, loader: 'js', watchDirs: [path.join(ROOT, 'web'), path.join(ROOT, 'client')] };
    });
  },
};

// serverless-esbuild loads this file for `custom.esbuild.plugins`: a list of esbuild plugins.
module.exports = [webPagePlugin];
module.exports.buildPage = buildPage;
module.exports.webPagePlugin = webPagePlugin;
