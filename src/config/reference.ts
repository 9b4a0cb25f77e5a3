import { envName } from './load.js';
import { leaves } from './introspect.js';
import { configSchema } from './schema.js';

/** docs/config.md, generated from the schema so the reference cannot drift from what is validated. */
export function renderConfigReference(): string {
  const defaults = configSchema.parse({});
  const rows = leaves(configSchema).map((leaf) => {
    let value: unknown = defaults;
    for (const p of leaf.path) value = (value as Record<string, unknown> | undefined)?.[p];
    const type = leaf.kind === 'enum' ? (leaf.values ?? []).map((v) => `\`${v}\``).join(' \\| ') : leaf.kind;
    const def = value === undefined ? '(unset)' : `\`${JSON.stringify(value)}\``;
    return `| \`${leaf.path.join('.')}\` | ${type} | ${def} | \`${envName(leaf.path)}\` | ${(leaf.description ?? '').replaceAll('|', '\\|')} |`;
  });
  return [
    '# Configuration reference',
    '',
    'Generated from `src/config/schema.ts` by `npm run docs:schemas`; a test keeps it in sync.',
    '',
    'Layers, lowest first: built-in defaults, the system file, what `vigil enroll` saved, the user file (or',
    '`--config`), environment variables, command-line flags, and managed (MDM) settings, which no lower layer',
    'can override.',
    '',
    '`vigil enroll` saves the `--control-plane`, `--ca-url` and `--fingerprint` it enrolled with (never the',
    'enrollment secret) in `enrollment.json` in the state dir, as `reporting.controlPlaneUrl`,',
    '`identity.caUrl` and `identity.fingerprint`, so that `vigil report --once` and `vigil daemon` need no',
    'config afterwards. It is written only after enrollment succeeded, and holds those three keys only; a',
    'corrupt one stops every command with an error naming the file and key (fix it, or delete it and enroll',
    'again). `vigil config show` names it as `enrollment (<path>)`.',
    '`vigil config show` prints the effective value of every key and the layer it came from.',
    '',
    '| key | type | default | environment | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
