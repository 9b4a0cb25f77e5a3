import type { z } from 'zod';

/** A problem the user must fix in a file, a flag or the environment; the CLI prints the message and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] ?? 0;
      row[j] = Math.min(cur + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] ?? 0;
}

/** The closest candidate, if it is close enough to be a plausible typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestScore) {
      best = c;
      bestScore = d;
    }
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  // JSON.parse turns 1e400 into Infinity, which JSON.stringify would show as null.
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function getAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function expected(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `expected ${issue.origin === 'string' ? 'a non-empty string' : `a value >= ${String(issue.minimum)}`}`;
    case 'too_big':
      return `expected a value <= ${String(issue.maximum)}`;
    case 'invalid_format':
      // A pattern means nothing to the reader; the schema says in words what it wants.
      return issue.format === 'regex' ? issue.message : `expected ${issue.format}`;
    default:
      return issue.message.replace(/^Invalid input: /, '');
  }
}

export interface KeyedIssue {
  /** Dotted path of the offending key. */
  path: string;
  message: string;
}

/**
 * One line per issue, naming the key path, the value and what was expected; unknown keys get a
 * "did you mean" from the keys that are allowed at that level.
 */
export function describeIssues(
  error: z.ZodError,
  input: unknown,
  allowedKeysAt: (path: readonly PropertyKey[]) => readonly string[],
): KeyedIssue[] {
  const out: KeyedIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key].join('.');
        const hint = nearest(key, allowedKeysAt(issue.path));
        const prefix = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
        out.push({ path, message: `unknown key "${path}"${hint ? ` (did you mean "${prefix}${hint}"?)` : ''}` });
      }
      continue;
    }
    const path = issue.path.join('.');
    const got = describeValue(getAt(input, issue.path));
    out.push({ path, message: `${path || '(top level)'}: ${expected(issue)}, got ${got}` });
  }
  return out;
}
