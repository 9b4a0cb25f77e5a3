import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../state/atomic.js';
import { describeIssues, UsageError } from './errors.js';
import { keysAt } from './introspect.js';
import { identityConfigSchema } from './sections/identity.js';
import { reportingConfigSchema } from './sections/reporting.js';

/**
 * What `vigil enroll` was told, kept in the state dir so that later commands need no config, as
 * `step ca bootstrap` keeps its defaults: the control-plane URL, the CA URL and the root fingerprint.
 * Never the enrollment secret, which is single-purpose and must not outlive enrollment in a file.
 *
 * It is a config layer (above the system file, below the user file, environment, flags and managed
 * settings), shaped like config.json so that `config show` and error messages name the same keys. Its
 * own schema admits these three keys only: a hand-edited or corrupt file cannot set anything else.
 */
export const ENROLLMENT_FILE = 'enrollment.json';

export const savedEnrollmentSchema = z.strictObject({
  reporting: z.strictObject({ controlPlaneUrl: reportingConfigSchema.shape.controlPlaneUrl }).optional(),
  identity: z.strictObject({ caUrl: identityConfigSchema.shape.caUrl, fingerprint: identityConfigSchema.shape.fingerprint }).optional(),
});
export type SavedEnrollment = z.infer<typeof savedEnrollmentSchema>;

export interface EnrollmentValues {
  controlPlaneUrl?: string | undefined;
  caUrl?: string | undefined;
  fingerprint?: string | undefined;
}

export function enrollmentFile(stateDir: string): string {
  return join(stateDir, ENROLLMENT_FILE);
}

/** Source name shown by `vigil config show` and in error messages. */
export function enrollmentSource(stateDir: string): string {
  return `enrollment (${enrollmentFile(stateDir)})`;
}

function validate(path: string, value: unknown, what: string): SavedEnrollment {
  const parsed = savedEnrollmentSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const lines = describeIssues(parsed.error, value, (p) => keysAt(savedEnrollmentSchema, p)).map((i) => `${path}: ${i.message}; ${what}`);
  throw new UsageError(lines.join('\n'));
}

/**
 * The saved values, or undefined when enroll never saved any. A file that cannot be read or parsed is a
 * UsageError naming the file (and the key): guessing around it would report to a server nobody chose.
 */
export async function readSavedEnrollment(stateDir: string): Promise<SavedEnrollment | undefined> {
  const path = enrollmentFile(stateDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`${path}: cannot read: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path}: invalid JSON (${(err as Error).message}); it is saved by vigil enroll: delete it, and enroll again to save it anew`);
  }
  return validate(path, value, 'it is saved by vigil enroll: fix it, or delete it and enroll again');
}

/**
 * Checks values before enrollment spends a token on them: a value enrollment accepts but the config
 * loader would refuse must not reach the file, or every later command would fail on it.
 */
export function checkEnrollmentValues(values: EnrollmentValues, flagOf: Record<keyof EnrollmentValues, string>): void {
  const parsed = savedEnrollmentSchema.safeParse(toSaved(values));
  if (parsed.success) return;
  const byKey: Record<string, keyof EnrollmentValues> = {
    'reporting.controlPlaneUrl': 'controlPlaneUrl',
    'identity.caUrl': 'caUrl',
    'identity.fingerprint': 'fingerprint',
  };
  throw new UsageError(
    parsed.error.issues
      .map((i) => {
        const key = byKey[i.path.join('.')];
        return key ? `${flagOf[key]} ${String(values[key])}: ${i.message}` : i.message;
      })
      .join('\n'),
  );
}

function toSaved(v: EnrollmentValues): SavedEnrollment {
  const out: SavedEnrollment = {};
  if (v.controlPlaneUrl !== undefined) out.reporting = { controlPlaneUrl: v.controlPlaneUrl };
  if (v.caUrl !== undefined || v.fingerprint !== undefined) {
    out.identity = {
      ...(v.caUrl === undefined ? {} : { caUrl: v.caUrl }),
      ...(v.fingerprint === undefined ? {} : { fingerprint: v.fingerprint }),
    };
  }
  return out;
}

/**
 * Records the values a successful enrollment used, over those saved before (a later `enroll --token` with
 * no URLs keeps the control plane). Written atomically: a crash leaves the old file or the new one.
 */
export async function saveEnrollment(stateDir: string, values: EnrollmentValues): Promise<void> {
  const given = toSaved(values);
  if (given.reporting === undefined && given.identity === undefined) return;
  const before = (await readSavedEnrollment(stateDir)) ?? {};
  const merged = validate(enrollmentFile(stateDir), {
    ...before,
    ...(given.reporting ? { reporting: { ...before.reporting, ...given.reporting } } : {}),
    ...(given.identity ? { identity: { ...before.identity, ...given.identity } } : {}),
  }, 'not saved');
  await writeFileAtomic(enrollmentFile(stateDir), `${JSON.stringify(merged, null, 2)}\n`, 0o600);
}
