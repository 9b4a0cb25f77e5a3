import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ROOT } from '../helpers.js';
import { leaves } from '../../src/config/introspect.js';
import { configSchema } from '../../src/config/schema.js';
import { parsePlistXml } from '../../src/posture/darwin/plist.js';
import { stripPayloadKeys } from '../../src/config/managed-darwin.js';
import { coerceRegistryValues, parseRegQuery } from '../../src/config/managed-win32.js';
import { MDM_TEMPLATES, renderAdmx, renderMobileconfig } from '../../src/config/mdm-templates.js';

const MDM = join(ROOT, 'build', 'mdm');
const schemaLeaves = new Map(leaves(configSchema).map((l) => [l.path.join('.'), l]));
const defaults = configSchema.parse({});
const HKLM = 'HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Vigil';

function leafPaths(v: Record<string, unknown>, prefix: string[] = []): string[] {
  return Object.entries(v).flatMap(([k, x]) =>
    typeof x === 'object' && x !== null && !Array.isArray(x) ? leafPaths(x as Record<string, unknown>, [...prefix, k]) : [[...prefix, k].join('.')],
  );
}

function at(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((cur, p) => (typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[p] : undefined), obj);
}

/** What macOS writes to /Library/Managed Preferences: the com.vigil.agent payload minus its Payload* keys. */
function profileValues(text: string): Record<string, unknown> {
  const profile = parsePlistXml(text);
  const content = typeof profile === 'object' && profile !== null && !Array.isArray(profile) ? profile.PayloadContent : undefined;
  const payload = Array.isArray(content) ? content.find((p) => typeof p === 'object' && p !== null && !Array.isArray(p) && p.PayloadType === 'com.vigil.agent') : undefined;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new Error('no com.vigil.agent payload');
  return stripPayloadKeys(payload);
}

interface AdmxValue {
  subkey: string[];
  valueName: string;
  element: string;
  attrs: string;
}

function admxValues(admx: string): AdmxValue[] {
  const out: AdmxValue[] = [];
  for (const m of admx.matchAll(/<policy [^>]*key="SOFTWARE\\Policies\\Vigil((?:\\\w+)*)"[^>]*>([\s\S]*?)<\/policy>/g)) {
    const subkey = (m[1] ?? '').split('\\').filter(Boolean);
    for (const e of (m[2] ?? '').matchAll(/<(enum|text|decimal|boolean|multiText) ([^>]*)valueName="(\w+)"([^>]*)>/g)) {
      out.push({ subkey, element: e[1] ?? '', valueName: e[3] ?? '', attrs: `${e[2] ?? ''}${e[4] ?? ''}` });
    }
  }
  return out;
}

/** The element a leaf must have: a DWORD holds no fraction and no list, so those take text and multi-line boxes. */
function expectedElement(path: string): string {
  const leaf = schemaLeaves.get(path);
  const def = at(defaults, path);
  switch (leaf?.kind) {
    case 'enum':
      return 'enum';
    case 'string':
      return 'text';
    case 'boolean':
      return 'boolean';
    case 'number':
      return typeof def === 'number' && !Number.isInteger(def) ? 'text' : 'decimal';
    case 'json':
      return Array.isArray(def) && def.every((x) => typeof x === 'string') ? 'multiText' : 'text';
    case undefined:
      return `no leaf ${path}`;
  }
}

/** A `reg query /s` listing of what Group Policy writes when every policy is enabled with `value(path)`. */
function regQueryFor(values: readonly AdmxValue[], value: (path: string) => unknown): string {
  const blocks = new Map<string, string[]>();
  for (const v of values) {
    const path = [...v.subkey, v.valueName].join('.');
    const x = value(path);
    let line: string;
    if (v.element === 'decimal' || v.element === 'boolean') line = `REG_DWORD    0x${Number(x).toString(16)}`;
    else if (v.element === 'multiText') line = `REG_MULTI_SZ    ${(x as string[]).join('\\0')}`;
    else line = `REG_SZ    ${typeof x === 'string' ? x : JSON.stringify(x)}`;
    const key = [HKLM, ...v.subkey].join('\\');
    blocks.set(key, [...(blocks.get(key) ?? []), `    ${v.valueName}    ${line}`]);
  }
  return [...blocks].map(([key, lines]) => ['', key, ...lines].join('\r\n')).join('\r\n') + '\r\n';
}

describe('MDM templates are current (run `npm run docs:schemas` after changing the config schema)', () => {
  it.each(Object.entries(MDM_TEMPLATES))('%s', (path, render) => {
    expect(readFileSync(join(ROOT, path), 'utf8')).toBe(render());
  });
});

describe('MDM templates stay in sync with the config schema', () => {
  it('the .mobileconfig payload sets every leaf key, and its values pass the schema', () => {
    const values = profileValues(readFileSync(join(MDM, 'com.vigil.agent.mobileconfig'), 'utf8'));
    expect(leafPaths(values).sort()).toEqual([...schemaLeaves.keys()].sort());
    expect(configSchema.safeParse(values).success).toBe(true);
    // Keys with a default are set to it; the rest hold examples.
    for (const path of schemaLeaves.keys()) if (at(defaults, path) !== undefined) expect(at(values, path), path).toEqual(at(defaults, path));
  });

  it('the ADMX has one policy per leaf key, at the right registry key and with a matching element type', () => {
    const values = admxValues(readFileSync(join(MDM, 'vigil.admx'), 'utf8'));
    for (const v of values) {
      const path = [...v.subkey, v.valueName].join('.');
      expect({ path, element: v.element }).toEqual({ path, element: expectedElement(path) });
    }
    expect(values.map((v) => [...v.subkey, v.valueName].join('.')).sort()).toEqual([...schemaLeaves.keys()].sort());
  });

  it('decimal bounds are what the schema accepts, within a DWORD (ADMX otherwise caps them at 9999)', () => {
    for (const v of admxValues(readFileSync(join(MDM, 'vigil.admx'), 'utf8')).filter((x) => x.element === 'decimal')) {
      const path = [...v.subkey, v.valueName].join('.');
      const min = Number(/minValue="(\d+)"/.exec(v.attrs)?.[1]);
      const max = Number(/maxValue="(\d+)"/.exec(v.attrs)?.[1]);
      expect(max, path).toBeLessThanOrEqual(4_294_967_295);
      const probe = (n: number): boolean => configSchema.safeParse(setAt(path, n)).success;
      expect([probe(min), probe(max), min === 0 || !probe(min - 1)], path).toEqual([true, true, true]);
    }
  });

  it('every string and presentation the ADMX references exists in the ADML', () => {
    const admx = readFileSync(join(MDM, 'vigil.admx'), 'utf8');
    const adml = readFileSync(join(MDM, 'en-US', 'vigil.adml'), 'utf8');
    const strings = new Set([...adml.matchAll(/<string id="(\w+)">/g)].map((m) => m[1]));
    const presentations = new Set([...adml.matchAll(/<presentation id="(\w+)">/g)].map((m) => m[1]));
    for (const m of admx.matchAll(/\$\(string\.(\w+)\)/g)) expect(strings, m[1]).toContain(m[1]);
    for (const m of admx.matchAll(/\$\(presentation\.(\w+)\)/g)) expect(presentations, m[1]).toContain(m[1]);
    const elementIds = new Set([...admx.matchAll(/<(?:enum|text|decimal|boolean|multiText) id="(\w+)"/g)].map((m) => m[1]));
    for (const m of adml.matchAll(/refId="(\w+)"/g)) expect(elementIds, m[1]).toContain(m[1]);
  });

  it('what the ADMX writes to the registry reads back through managed-win32 as the profile values', () => {
    const profile = profileValues(readFileSync(join(MDM, 'com.vigil.agent.mobileconfig'), 'utf8'));
    const reg = regQueryFor(admxValues(readFileSync(join(MDM, 'vigil.admx'), 'utf8')), (path) => at(profile, path));
    const values = coerceRegistryValues(parseRegQuery(reg, HKLM));
    expect(values).toEqual(profile);
    expect(configSchema.safeParse(values).success).toBe(true);
  });
});

function setAt(path: string, value: unknown): Record<string, unknown> {
  const parts = path.split('.');
  const out: Record<string, unknown> = {};
  let node = out;
  for (const p of parts.slice(0, -1)) node = node[p] = {};
  node[parts.at(-1) ?? ''] = value;
  return out;
}

describe('registry text values', () => {
  it('a fractional number and a JSON list typed into text boxes are read as the schema types', () => {
    const reg = [`${HKLM}\\identity`, '    renewFraction    REG_SZ    0.25', `${HKLM}\\identity\\subject`, '    uris    REG_SZ    ["urn:a","urn:b"]', ''].join('\r\n');
    expect(coerceRegistryValues(parseRegQuery(reg, HKLM))).toEqual({ identity: { renewFraction: 0.25, subject: { uris: ['urn:a', 'urn:b'] } } });
  });

  it('text that is not a number or JSON passes through, so the schema reports it against its key', () => {
    const reg = [`${HKLM}\\identity`, '    renewFraction    REG_SZ    a third', `${HKLM}\\identity\\subject`, '    uris    REG_SZ    [urn:a', ''].join('\r\n');
    const values = coerceRegistryValues(parseRegQuery(reg, HKLM));
    expect(values).toEqual({ identity: { renewFraction: 'a third', subject: { uris: '[urn:a' } } });
    const issues = configSchema.safeParse(values).error?.issues.map((i) => i.path.join('.'));
    expect(issues?.sort()).toEqual(['identity.renewFraction', 'identity.subject.uris']);
  });
});

describe('generator', () => {
  it('refuses a key with neither a default nor an example value rather than leave it out of the profile', () => {
    expect(() => renderMobileconfig(z.strictObject({ newPath: z.string().optional() }))).toThrow(/newPath has no default/);
  });

  it('structured values other than string lists become a text box holding JSON', () => {
    const admx = renderAdmx(z.strictObject({ labels: z.record(z.string(), z.string()).default({ site: 'hq' }) }));
    expect(admx).toMatch(/<text id="Labels_Value" valueName="labels"/);
  });
});
