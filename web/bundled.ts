/**
 * The built page. This file is a placeholder: when serverless-esbuild bundles the api function,
 * infra/web-page.js builds web/main.tsx and loads its output here instead. Code run by tsx or
 * jest has no page (GET / answers 404 NoRoute saying so).
 */
import type { PageBundle } from '../lib/page';

export const PAGE: PageBundle | undefined = undefined;
