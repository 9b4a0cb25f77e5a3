import { release } from 'node:os';
import type { Collector } from '../collector.js';
import type { Observation } from '../types.js';
import type { Thresholds } from '../../policy/schema.js';
import { compareVersions } from '../../util/version.js';
import { readOsRelease, type OsRelease } from './os-release.js';

/** Judges a release against the policy minimum for its os-release ID; derivatives need their own entry. */
export function judgeOsVersion(rel: OsRelease, kernel: string, thresholds: Thresholds): Observation {
  const evidence = { id: rel.id, name: rel.prettyName, versionId: rel.versionId ?? null, kernel };
  const key = rel.id in thresholds.minimumOsVersions ? rel.id : undefined;
  const minimum = key ? thresholds.minimumOsVersions[key] : undefined;
  if (minimum === undefined) {
    return { status: 'unknown', evidence, reason: `the policy sets no minimum version for "${rel.id}"` };
  }
  if (!rel.versionId) {
    return { status: 'unknown', evidence: { ...evidence, minimum }, reason: 'os-release has no VERSION_ID' };
  }
  const ok = compareVersions(rel.versionId, minimum) >= 0;
  return {
    status: ok ? 'pass' : 'fail',
    evidence: { ...evidence, minimum },
    reason: ok ? `${rel.prettyName} meets the minimum ${rel.id} ${minimum}` : `${rel.prettyName} is older than the minimum ${rel.id} ${minimum}`,
  };
}

export const osVersion: Collector = async (ctx) => judgeOsVersion(await readOsRelease(ctx), release(), ctx.thresholds);
