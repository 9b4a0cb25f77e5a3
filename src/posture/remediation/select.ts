import { compareVersions } from '../../util/version.js';
import type { DeviceContext, Remediation, RemediationGuide } from './types.js';

export function guideApplies(guide: RemediationGuide, ctx: DeviceContext): boolean {
  const w = guide.when;
  if (!w) return true;
  if (w.desktop && w.desktop !== ctx.desktop) return false;
  if (w.distroFamily && w.distroFamily !== ctx.distroFamily) return false;
  if (w.minOsVersion && (!ctx.osVersion || compareVersions(ctx.osVersion, w.minOsVersion) < 0)) return false;
  if (w.maxOsVersion && (!ctx.osVersion || compareVersions(ctx.osVersion, w.maxOsVersion) > 0)) return false;
  return true;
}

/** The instructions for this device: the first guide whose conditions all hold, else the last (the general one). */
export function selectGuide(remediation: Remediation | undefined, ctx: DeviceContext): RemediationGuide | undefined {
  if (!remediation) return undefined;
  return remediation.guides.find((g) => guideApplies(g, ctx)) ?? remediation.guides[remediation.guides.length - 1];
}
