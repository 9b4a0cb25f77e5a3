import { run, type ExecResult } from '../posture/exec.js';
import { leaves } from './introspect.js';
import { configSchema } from './schema.js';

export const WIN32_POLICY_KEY = 'SOFTWARE\\Policies\\Vigil';

export interface ManagedLayer {
  source: string;
  values: Record<string, unknown>;
}

type Run = (command: string, args: readonly string[]) => Promise<ExecResult>;

export type RegValue = string | number | string[];
export interface RegTree {
  [name: string]: RegValue | RegTree;
}

const VALUE_LINE = /^ {4}(.+?) {4}(REG_[A-Z_]+)(?: {4}(.*))?$/;

function decode(type: string, data: string): RegValue {
  switch (type) {
    case 'REG_DWORD':
    case 'REG_QWORD':
      return Number.parseInt(data, 16);
    case 'REG_MULTI_SZ':
      return data === '' ? [] : data.split('\\0');
    default:
      // REG_SZ, REG_EXPAND_SZ (unexpanded), REG_BINARY (hex text) and anything newer stay text.
      return data;
  }
}

/**
 * Parses `reg query <root> /s`: blocks of a key path line followed by "    name    REG_TYPE    data" lines.
 * Subkeys below `root` become nested objects, REG_DWORD/REG_QWORD numbers, REG_SZ strings, REG_MULTI_SZ arrays.
 * The unnamed default value is skipped: its label is localized ("(Default)", "(Standard)") and Vigil sets none.
 */
export function parseRegQuery(text: string, root: string): RegTree {
  const tree: RegTree = {};
  const rootUpper = root.toUpperCase();
  let node: RegTree | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (/^HKEY_/i.test(line)) {
      const path = line.trim();
      if (!path.toUpperCase().startsWith(rootUpper)) {
        node = undefined;
        continue;
      }
      let cur: RegTree = tree;
      for (const part of path.slice(root.length).split('\\').filter(Boolean)) {
        const next: RegValue | RegTree | undefined = cur[part];
        if (typeof next === 'object' && !Array.isArray(next)) cur = next;
        else cur = cur[part] = {};
      }
      node = cur;
      continue;
    }
    const m = VALUE_LINE.exec(line);
    if (!m?.[1] || !m[2] || !node) continue;
    // The default value's label is localized and in parentheses, with no data when unset.
    if (/^\(.+\)$/.test(m[1])) continue;
    node[m[1]] = decode(m[2], m[3] ?? '');
  }
  return tree;
}

const leafKinds = new Map(leaves(configSchema).map((l) => [l.path.join('.'), l.kind]));
const NUMBER_TEXT = /^\s*-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?\s*$/i;

/**
 * Fits registry types to the config schema. The registry has no boolean type: ADMX writes booleans as REG_DWORD
 * 0/1. A DWORD holds no fraction, so the ADMX edits fractional numbers (identity.renewFraction) in a text box,
 * stored as REG_SZ; and structured values other than string lists (REG_MULTI_SZ) are REG_SZ holding JSON.
 * Text that does not parse is passed on unchanged, so the schema reports it against its key.
 */
function coerceLeaf(path: string, v: RegValue): unknown {
  const kind = leafKinds.get(path);
  if (typeof v === 'number') return kind === 'boolean' ? v !== 0 : v;
  if (typeof v !== 'string') return v;
  if (kind === 'number' && NUMBER_TEXT.test(v)) return Number(v);
  if (kind === 'json') {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }
  return v;
}

export function coerceRegistryValues(tree: RegTree, prefix: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tree)) {
    const path = [...prefix, k];
    out[k] = typeof v === 'object' && !Array.isArray(v) ? coerceRegistryValues(v, path) : coerceLeaf(path.join('.'), v);
  }
  return out;
}

/**
 * Windows MDM/Group Policy settings from HKCU then HKLM \SOFTWARE\Policies\Vigil, so that in the loader's
 * last-wins merge machine policy overrides user policy. A missing key (reg exits 1) yields no layer.
 */
export async function readManagedSettings(opts: { exec?: Run } = {}): Promise<ManagedLayer[]> {
  const exec = opts.exec ?? ((c, a) => run(c, a, { timeoutMs: 5000 }));
  const layers: ManagedLayer[] = [];
  for (const hive of ['HKEY_CURRENT_USER', 'HKEY_LOCAL_MACHINE']) {
    const root = `${hive}\\${WIN32_POLICY_KEY}`;
    const res = await exec('reg.exe', ['query', root, '/s']).catch(() => undefined);
    if (res?.code !== 0) continue;
    const values = coerceRegistryValues(parseRegQuery(res.stdout, root));
    if (Object.keys(values).length > 0) layers.push({ source: `${root} (Group Policy / MDM)`, values });
  }
  return layers;
}
