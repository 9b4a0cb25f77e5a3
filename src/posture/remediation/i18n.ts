import type { Platform } from '../types.js';
import type { Remediation, RemediationGuide } from './types.js';

/** A locale's translations: message key -> text. English is not a catalog: it is the remediation data itself. */
export type MessageCatalog = Readonly<Record<string, string>>;

/**
 * Keys follow the content's position, so adding a guide or step never needs a hand-written id:
 * remediation.<platform>.<checkId>.<guideIndex>.label and remediation.<platform>.<checkId>.<guideIndex>.step.<n>
 * (n from 1, as the steps are shown). Translators work from `englishMessages`.
 */
export function remediationKey(platform: Platform, checkId: string, guide: number, part: 'label' | { step: number }): string {
  const base = `remediation.${platform}.${checkId}.${guide}`;
  return part === 'label' ? `${base}.label` : `${base}.step.${part.step}`;
}

/** Every translatable string of a platform's remediation content, keyed as above, in English. */
export function englishMessages(platform: Platform, table: Readonly<Record<string, { remediation: Remediation }>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [checkId, { remediation }] of Object.entries(table)) {
    remediation.guides.forEach((g, gi) => {
      out[remediationKey(platform, checkId, gi, 'label')] = g.label;
      g.steps.forEach((s, si) => (out[remediationKey(platform, checkId, gi, { step: si + 1 })] = s));
    });
  }
  return out;
}

/** The remediation with each string replaced by the catalog's translation; missing keys fall back to English. */
export function localizeRemediation(platform: Platform, checkId: string, remediation: Remediation, catalog: MessageCatalog = {}): Remediation {
  const t = (key: string, english: string): string => (Object.hasOwn(catalog, key) ? (catalog[key] ?? english) : english);
  return {
    guides: remediation.guides.map(
      (g, gi): RemediationGuide => ({
        ...g,
        label: t(remediationKey(platform, checkId, gi, 'label'), g.label),
        steps: g.steps.map((s, si) => t(remediationKey(platform, checkId, gi, { step: si + 1 }), s)),
      }),
    ),
  };
}
