// Builds the admin console (console/src, Preact) into dist/console/: one script and one stylesheet, no
// inline code, so the page runs under `script-src 'self'; style-src 'self'`. File names stay stable for
// the server's static route; a content hash in the query string makes a new build bypass caches.
// `--out <dir>` builds elsewhere (tests).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { out: { type: 'string' } } });
const out = values.out ?? join('dist', 'console');
// Built beside the target and renamed into place, so a running server never serves half a build.
const tmp = `${out}.tmp-${process.pid}`;
rmSync(tmp, { recursive: true, force: true });
mkdirSync(tmp, { recursive: true });

await build({
  entryPoints: { app: 'console/src/main.tsx' },
  outdir: tmp,
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: 'chrome120',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});

const hash = (f) => createHash('sha256').update(readFileSync(join(tmp, f))).digest('base64url').slice(0, 12);
writeFileSync(
  join(tmp, 'index.html'),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Vigil console</title>
<link rel="stylesheet" href="/console/app.css?v=${hash('app.css')}">
<script src="/console/app.js?v=${hash('app.js')}" defer></script>
</head>
<body>
<div id="app"></div>
<noscript>The Vigil console needs JavaScript.</noscript>
</body>
</html>
`,
);
rmSync(out, { recursive: true, force: true });
renameSync(tmp, out);
