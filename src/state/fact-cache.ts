import { readFile } from 'node:fs/promises';
import type { FactPersistence } from '../posture/facts.js';
import { AGENT_VERSION } from '../version.js';
import { writeFileAtomic } from './atomic.js';

type Entries = Record<string, { version: string; value: unknown }>;

function isEntries(v: unknown): v is Entries {
  return (
    typeof v === 'object' &&
    v !== null &&
    Object.values(v).every((e) => typeof e === 'object' && e !== null && typeof (e as { version?: unknown }).version === 'string' && 'value' in e)
  );
}

/**
 * Persistent facts in one JSON file. It is only a cache: a missing, corrupt or older-agent file reads as
 * empty (a newer agent may have changed a fact's shape), and the next costly probe rewrites it.
 */
export function jsonFactCache(path: string): FactPersistence {
  return {
    async read() {
      try {
        const doc = JSON.parse(await readFile(path, 'utf8')) as { agentVersion?: unknown; facts?: unknown };
        return doc.agentVersion === AGENT_VERSION && isEntries(doc.facts) ? doc.facts : {};
      } catch {
        return {};
      }
    },
    async write(facts) {
      await writeFileAtomic(path, JSON.stringify({ agentVersion: AGENT_VERSION, facts }), 0o600);
    },
  };
}
