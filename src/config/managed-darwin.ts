import { userInfo } from 'node:os';
import { run, type ExecResult } from '../posture/exec.js';
import { plistDict, type PlistDict } from '../posture/darwin/plist.js';

export const DARWIN_MANAGED_DOMAIN = 'com.vigil.agent';
const MANAGED_ROOT = '/Library/Managed Preferences';

export interface ManagedLayer {
  source: string;
  values: Record<string, unknown>;
}

type Run = (command: string, args: readonly string[]) => Promise<ExecResult>;

/** A managed-preferences dictionary without the Payload* bookkeeping keys some MDMs copy into it. */
export function stripPayloadKeys(dict: PlistDict): Record<string, unknown> {
  return Object.fromEntries(Object.entries(dict).filter(([k]) => !k.startsWith('Payload')));
}

/** The settings of a managed-preferences plist; undefined when the text is not a plist dictionary. */
export function managedValuesFromPlist(xml: string): Record<string, unknown> | undefined {
  const dict = plistDict(xml);
  return dict ? stripPayloadKeys(dict) : undefined;
}

/**
 * One plist through plutil. XML rather than plutil's JSON output: the JSON converter rejects a whole file that
 * holds a <date> or <data> value, and a profile an admin wrote may. A missing file is not an error.
 */
async function readPlist(path: string, exec: Run): Promise<ManagedLayer | undefined> {
  const res = await exec('/usr/bin/plutil', ['-convert', 'xml1', '-o', '-', path]);
  if (res.code !== 0) return undefined;
  const values = managedValuesFromPlist(res.stdout);
  return values ? { source: `${path} (configuration profile)`, values } : undefined;
}

/**
 * macOS MDM settings: the machine-wide managed preferences and the per-user ones. The per-user layer comes
 * first and the machine layer last, so that in the loader's last-wins merge a device profile overrides a user one.
 */
export async function readManagedSettings(
  opts: { user?: string; exec?: Run } = {},
): Promise<ManagedLayer[]> {
  const exec = opts.exec ?? ((c, a) => run(c, a, { timeoutMs: 5000 }));
  const user = opts.user ?? userInfo().username;
  const paths = [`${MANAGED_ROOT}/${user}/${DARWIN_MANAGED_DOMAIN}.plist`, `${MANAGED_ROOT}/${DARWIN_MANAGED_DOMAIN}.plist`];
  const layers: ManagedLayer[] = [];
  for (const path of paths) {
    const layer = await readPlist(path, exec).catch(() => undefined);
    if (layer) layers.push(layer);
  }
  return layers;
}
