import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePolicy } from '../policy/load.js';
import type { Policy } from '../policy/schema.js';
import { writeFileAtomic } from '../state/atomic.js';

/** Where the last policy the control plane pushed is kept, so it outlives a restart. */
export function pushedPolicyFile(stateDir: string): string {
  return join(stateDir, 'pushed-policy.json');
}

export const PUSHED_POLICY_SOURCE = 'policy pushed by the control plane';

export async function savePushedPolicy(stateDir: string, policy: Policy): Promise<void> {
  await writeFileAtomic(pushedPolicyFile(stateDir), `${JSON.stringify(policy, null, 2)}\n`, 0o600);
}

export type PushedPolicy = { ok: true; policy: Policy } | { ok: false; problem: string };

/** undefined when nothing was pushed; a corrupt file is described, never thrown, so the agent still starts. */
export async function readPushedPolicy(stateDir: string): Promise<PushedPolicy | undefined> {
  const file = pushedPolicyFile(stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { ok: false, problem: `${file}: cannot read: ${(err as Error).message}` };
  }
  try {
    return { ok: true, policy: parsePolicy(file, JSON.parse(text) as unknown) };
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    return { ok: false, problem: err instanceof SyntaxError ? `${file}: not valid JSON (corrupted?)` : first };
  }
}
