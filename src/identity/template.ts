import type { SubjectTemplate } from '../config/sections/identity.js';
import type { CsrRequest } from './keys.js';

export interface TemplateVars {
  id: string;
  domain: string | undefined;
}

/** Expands `{id}` and `{domain}`; undefined when the template names a variable with no value. */
export function expand(template: string, vars: TemplateVars): string | undefined {
  const missing: string[] = [];
  const out = template.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const v = name === 'id' ? vars.id : name === 'domain' ? vars.domain : undefined;
    if (v === undefined) missing.push(name);
    return v ?? '';
  });
  return missing.length > 0 ? undefined : out;
}

/** The subject and SANs for the CSR (and, for a JWK provisioner, the token's `sub` and `sans`). */
export function renderSubject(t: SubjectTemplate, vars: TemplateVars): CsrRequest {
  const commonName = expand(t.commonName, vars);
  if (commonName === undefined) throw new Error(`the subject template "${t.commonName}" needs a value for every variable`);
  const keep = (xs: string[]): string[] => xs.map((x) => expand(x, vars)).filter((x): x is string => x !== undefined);
  return { commonName, dnsNames: keep(t.dnsNames).map((d) => d.toLowerCase()), uris: keep(t.uris) };
}

/** What an admin passes to `step ca token`: the subject and every SAN. */
export function tokenSans(req: CsrRequest): string[] {
  return [...req.dnsNames, ...req.uris];
}
