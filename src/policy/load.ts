import { readFile } from 'node:fs/promises';
import bundled from './default-policy.json' with { type: 'json' };
import { describeIssues, nearest, UsageError, type KeyedIssue } from '../config/errors.js';
import { keysAt } from '../config/introspect.js';
import { parseJsonObject } from '../config/load.js';
import { policySchema, type Policy } from './schema.js';
import { CHECK_IDS } from '../posture/catalog.js';

/**
 * Validates a policy document: the policy, or every problem with the dotted path of the key it concerns (the
 * admin console shows them beside the draft).
 */
export function checkPolicy(doc: unknown): { ok: true; policy: Policy } | { ok: false; issues: KeyedIssue[] } {
  const parsed = policySchema.safeParse(doc);
  if (!parsed.success) return { ok: false, issues: describeIssues(parsed.error, doc, (p) => keysAt(policySchema, p)) };
  const unknown = Object.keys(parsed.data.checks).filter((id) => !CHECK_IDS.includes(id));
  if (unknown.length > 0) {
    return {
      ok: false,
      issues: unknown.map((id) => {
        const hint = nearest(id, CHECK_IDS);
        return { path: `checks.${id}`, message: `checks.${id}: unknown check id${hint ? ` (did you mean "${hint}"?)` : ''}; see \`vigil checks\`` };
      }),
    };
  }
  return { ok: true, policy: parsed.data };
}

/** Validates a policy document; `source` names it in errors (a file path, or "policy from <server>"). */
export function parsePolicy(source: string, doc: unknown): Policy {
  const r = checkPolicy(doc);
  if (!r.ok) throw new UsageError(r.issues.map((i) => `${source}: ${i.message}`).join('\n'));
  return r.policy;
}

export const BUNDLED_POLICY_SOURCE = 'bundled default policy';

export function bundledPolicy(): Policy {
  return parsePolicy(BUNDLED_POLICY_SOURCE, bundled);
}

export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${path}: cannot read policy: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message}`);
  }
  return parsePolicy(path, parseJsonObject(path, text));
}
