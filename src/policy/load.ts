import { readFile } from 'node:fs/promises';
import bundled from './default-policy.json' with { type: 'json' };
import { describeIssues, nearest, UsageError } from '../config/errors.js';
import { keysAt } from '../config/introspect.js';
import { parseJsonObject } from '../config/load.js';
import { policySchema, type Policy } from './schema.js';
import { CHECK_IDS } from '../posture/catalog.js';

/** Validates a policy document; `source` names it in errors (a file path, or "policy from <server>"). */
export function parsePolicy(source: string, doc: unknown): Policy {
  const parsed = policySchema.safeParse(doc);
  if (!parsed.success) {
    const lines = describeIssues(parsed.error, doc, (p) => keysAt(policySchema, p)).map((i) => `${source}: ${i.message}`);
    throw new UsageError(lines.join('\n'));
  }
  const unknown = Object.keys(parsed.data.checks).filter((id) => !CHECK_IDS.includes(id));
  if (unknown.length > 0) {
    throw new UsageError(
      unknown
        .map((id) => {
          const hint = nearest(id, CHECK_IDS);
          return `${source}: checks.${id}: unknown check id${hint ? ` (did you mean "${hint}"?)` : ''}; see \`vigil checks\``;
        })
        .join('\n'),
    );
  }
  return parsed.data;
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
