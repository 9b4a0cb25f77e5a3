import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { leaves } from '../../src/config/introspect.js';
import { configSchema } from '../../src/config/schema.js';
import { parsePlistXml } from '../../src/posture/darwin/plist.js';
import { stripPayloadKeys } from '../../src/config/managed-darwin.js';

const MDM = join(ROOT, 'build', 'mdm');
const schemaLeaves = new Map(leaves(configSchema).map((l) => [l.path.join('.'), l]));

function leafPaths(v: Record<string, unknown>, prefix: string[] = []): string[] {
  return Object.entries(v).flatMap(([k, x]) =>
    typeof x === 'object' && x !== null && !Array.isArray(x) ? leafPaths(x as Record<string, unknown>, [...prefix, k]) : [[...prefix, k].join('.')],
  );
}

describe('MDM templates stay in sync with the config schema', () => {
  it('the .mobileconfig payload sets every leaf key, and its values pass the schema', () => {
    const profile = parsePlistXml(readFileSync(join(MDM, 'com.vigil.agent.mobileconfig'), 'utf8'));
    const content = typeof profile === 'object' && profile !== null && !Array.isArray(profile) ? profile.PayloadContent : undefined;
    const payload = Array.isArray(content) ? content.find((p) => typeof p === 'object' && p !== null && !Array.isArray(p) && p.PayloadType === 'com.vigil.agent') : undefined;
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new Error('no com.vigil.agent payload');
    // What macOS writes to /Library/Managed Preferences is the payload minus its Payload* keys.
    const values = stripPayloadKeys(payload);
    expect(leafPaths(values).sort()).toEqual([...schemaLeaves.keys()].sort());
    expect(configSchema.safeParse(values).success).toBe(true);
  });

  it('the ADMX has one policy per leaf key, at the right registry key and with a matching element type', () => {
    const admx = readFileSync(join(MDM, 'vigil.admx'), 'utf8');
    const found: string[] = [];
    for (const m of admx.matchAll(/<policy [^>]*key="SOFTWARE\\Policies\\Vigil((?:\\\w+)*)"[^>]*>([\s\S]*?)<\/policy>/g)) {
      const sub = (m[1] ?? '').split('\\').filter(Boolean);
      for (const e of (m[2] ?? '').matchAll(/<(enum|text|decimal|boolean) [^>]*valueName="(\w+)"/g)) {
        const path = [...sub, e[2] ?? ''].join('.');
        found.push(path);
        const kind = schemaLeaves.get(path)?.kind;
        expect({ path, element: e[1] }).toEqual({ path, element: { enum: 'enum', string: 'text', number: 'decimal', boolean: 'boolean', json: '?' }[kind ?? 'json'] });
      }
    }
    expect(found.sort()).toEqual([...schemaLeaves.keys()].sort());
  });

  it('every string and presentation the ADMX references exists in the ADML', () => {
    const admx = readFileSync(join(MDM, 'vigil.admx'), 'utf8');
    const adml = readFileSync(join(MDM, 'en-US', 'vigil.adml'), 'utf8');
    const strings = new Set([...adml.matchAll(/<string id="(\w+)">/g)].map((m) => m[1]));
    const presentations = new Set([...adml.matchAll(/<presentation id="(\w+)">/g)].map((m) => m[1]));
    for (const m of admx.matchAll(/\$\(string\.(\w+)\)/g)) expect(strings, m[1]).toContain(m[1]);
    for (const m of admx.matchAll(/\$\(presentation\.(\w+)\)/g)) expect(presentations, m[1]).toContain(m[1]);
    const elementIds = new Set([...admx.matchAll(/<(?:enum|text|decimal|boolean) id="(\w+)"/g)].map((m) => m[1]));
    for (const m of adml.matchAll(/refId="(\w+)"/g)) expect(elementIds, m[1]).toContain(m[1]);
  });
});
