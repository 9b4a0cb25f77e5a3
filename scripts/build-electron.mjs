// Bundles the tray: main (ESM, Node deps left external), the sandboxed preload (CJS: a sandboxed preload
// cannot import modules, so everything it needs is inlined) and the renderer (a browser IIFE).
// `--renderer-only --out <dir>` builds just the page, for the browser test.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { 'renderer-only': { type: 'boolean' }, out: { type: 'string' } } });
const out = values.out ?? join('dist', 'electron');
const rendererOut = values['renderer-only'] ? out : join(out, 'renderer');
if (!values['renderer-only']) rmSync(out, { recursive: true, force: true });
mkdirSync(rendererOut, { recursive: true });

const common = { bundle: true, sourcemap: true, logLevel: 'warning', legalComments: 'none' };

const renderer = build({
  ...common,
  entryPoints: ['electron/renderer/app.ts'],
  outfile: join(rendererOut, 'app.js'),
  platform: 'browser',
  format: 'iife',
  target: 'chrome120',
});
const node = values['renderer-only']
  ? []
  : [
      build({
        ...common,
        entryPoints: ['electron/main.ts'],
        outfile: join(out, 'main.js'),
        platform: 'node',
        format: 'esm',
        target: 'node20',
        packages: 'external',
      }),
      build({
        ...common,
        entryPoints: ['electron/preload.ts'],
        outfile: join(out, 'preload.cjs'),
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        external: ['electron'],
      }),
    ];
await Promise.all([renderer, ...node]);
for (const f of ['index.html', 'styles.css']) copyFileSync(join('electron', 'renderer', f), join(rendererOut, f));
