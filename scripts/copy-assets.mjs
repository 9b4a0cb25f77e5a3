// tsc emits only what is imported; the probes are run, not imported, so copy them beside the build.
import { cpSync, chmodSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const from = 'native-scripts';
const to = join('dist', 'native-scripts');
cpSync(from, to, { recursive: true });
chmodSync(join('dist', 'src', 'cli', 'main.js'), 0o755);
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.sh')) chmodSync(p, 0o755);
  }
};
walk(to);
