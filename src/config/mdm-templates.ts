import { z } from 'zod';
import { leaves, unwrap, type Leaf } from './introspect.js';
import { configSchema } from './schema.js';
import { WIN32_POLICY_KEY } from './managed-win32.js';

/**
 * The MDM templates under build/mdm (a macOS configuration profile and a Windows ADMX/ADML pair), generated
 * from the config schema by `npm run docs:schemas` so that a new config key reaches admins without anyone
 * hand-editing XML; test/config/mdm-templates.test.ts fails when the committed files are stale.
 */

/**
 * Values for keys that have no default, so the example profile sets every key and still passes the schema.
 * A new optional key without an entry here makes generation throw rather than silently leave it out.
 */
const EXAMPLE_VALUES: Readonly<Record<string, string | boolean>> = {
  stateDir: '/Library/Application Support/Vigil/state',
  logDir: '/Library/Logs/Vigil',
  'agent.socket': '/var/run/vigil/agent.sock',
  policyFile: '/Library/Application Support/Vigil/policy.json',
  'identity.caUrl': 'https://ca.example.com',
  // SHA-256 of the empty string: recognisably a placeholder, yet well-formed.
  'identity.fingerprint': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'identity.domain': 'example.com',
  'reporting.controlPlaneUrl': 'https://vigil.example.com:8443',
  'reporting.enrollmentSecretFile': '/Library/Application Support/Vigil/enrollment-secret',
  'updates.enabled': false,
  'updates.feedUrl': 'https://vigil.example.com:8443/updates/',
};

/** Category titles in the Group Policy editor; a section missing here is titled after its key. */
const SECTION_TITLES: Readonly<Record<string, string>> = {
  scan: 'Posture scans',
  identity: 'Device identity',
  'identity.subject': 'Certificate subject',
  reporting: 'Reporting',
  ui: 'Tray app',
  updates: 'Tray updates',
};

const WORDS: Readonly<Record<string, string>> = { dir: 'directory', ca: 'CA', url: 'URL', ttl: 'TTL', dns: 'DNS', uris: 'URIs', ms: '(milliseconds)', seconds: '(seconds)', minutes: '(minutes)' };

// Decimal elements store a REG_DWORD: unsigned 32-bit.
const DWORD_MAX = 4_294_967_295;

// Fixed so that regenerating the profile does not make MDMs see a new profile.
const PROFILE_UUID = '0D4C7B1E-8A2F-4E6B-B3C9-7F1A2D5E9C48';
const PAYLOAD_UUID = '6B0A9E3C-2F4D-4C7A-9E1B-5D8F2A7C3B10';

/**
 * How a leaf is edited in the Group Policy editor, and so which registry type it is stored as:
 * - enum: dropdown, REG_SZ; string: text box, REG_SZ; boolean: check box, REG_DWORD 0/1;
 * - number: decimal box (REG_DWORD) when whole numbers are what the key takes, else a text box (REG_SZ) whose
 *   text managed-win32.ts reads as a number, because a DWORD cannot hold a fraction such as identity.renewFraction;
 * - json: a list of strings is a multi-line box (REG_MULTI_SZ, one item per line, which the registry reader
 *   already returns as an array); anything else is a text box holding JSON, which managed-win32.ts parses.
 */
export type AdmxElement = 'enum' | 'text' | 'decimal' | 'boolean' | 'multiText';

interface Policy {
  leaf: Leaf;
  key: string;
  name: string;
  category: string;
  element: AdmxElement;
  schema: z.ZodType;
  value: unknown;
  hasDefault: boolean;
}

function schemaAt(schema: z.ZodType, path: readonly string[]): z.ZodType {
  let cur = unwrap(schema);
  for (const p of path) {
    if (!(cur instanceof z.ZodObject)) throw new Error(`not an object at ${p}`);
    const next = (cur.shape as Record<string, z.ZodType | undefined>)[p];
    if (!next) throw new Error(`no key ${p}`);
    cur = unwrap(next);
  }
  return cur;
}

function valueAt(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const p of path) cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

const pascal = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const idSafe = (s: string): string => s.replace(/[^A-Za-z0-9]+/g, '_');

function humanize(key: string): string {
  const words = key.split(/(?=[A-Z])/).map((w) => w.toLowerCase());
  const text = words.map((w) => WORDS[w] ?? w).join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function sectionTitle(section: readonly string[]): string {
  return SECTION_TITLES[section.join('.')] ?? humanize(section.at(-1) ?? 'Vigil');
}

function categoryId(section: readonly string[]): string {
  return ['Vigil', ...section.map(pascal)].join('_');
}

/** The smallest and largest whole numbers the schema accepts within a DWORD, or undefined when it takes none. */
function dwordRange(schema: z.ZodType): { min: number; max: number } | undefined {
  if (!(schema instanceof z.ZodNumber)) return undefined;
  const lo = Math.max(0, Math.ceil(schema.minValue ?? 0));
  const hi = Math.min(DWORD_MAX, Math.floor(schema.maxValue ?? DWORD_MAX));
  // minValue/maxValue do not say whether a bound is exclusive: probe it.
  const min = schema.safeParse(lo).success ? lo : lo + 1;
  const max = schema.safeParse(hi).success ? hi : hi - 1;
  return min <= max ? { min, max } : undefined;
}

function elementFor(leaf: Leaf, schema: z.ZodType, value: unknown): AdmxElement {
  switch (leaf.kind) {
    case 'enum':
      return 'enum';
    case 'string':
      return 'text';
    case 'boolean':
      return 'boolean';
    case 'number': {
      // Every leaf has a default or example, so its kind of value (whole or fractional) is known.
      return typeof value === 'number' && Number.isInteger(value) && dwordRange(schema) ? 'decimal' : 'text';
    }
    case 'json':
      return schema instanceof z.ZodArray && unwrap(schema.element as z.ZodType) instanceof z.ZodString ? 'multiText' : 'text';
  }
}

function policies(schema: z.ZodType): Policy[] {
  const defaults = schema.parse({});
  return leaves(schema).map((leaf) => {
    const key = leaf.path.join('.');
    const section = leaf.path.slice(0, -1);
    const def = valueAt(defaults, leaf.path);
    const value = def ?? EXAMPLE_VALUES[key];
    if (value === undefined) throw new Error(`${key} has no default: add an example value to EXAMPLE_VALUES in src/config/mdm-templates.ts`);
    const leafSchema = schemaAt(schema, leaf.path);
    return {
      leaf,
      key,
      name: leaf.path.map((p) => pascal(idSafe(p))).join(''),
      category: categoryId(section),
      element: elementFor(leaf, leafSchema, value),
      schema: leafSchema,
      value,
      hasDefault: def !== undefined,
    };
  });
}

const xml = (s: string): string => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/** Text for a registry value or text box: JSON for structured values, plain text otherwise. */
function asText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------------- macOS profile

function plistValue(v: unknown, indent: string): string[] {
  if (typeof v === 'string') return [`${indent}<string>${xml(v)}</string>`];
  if (typeof v === 'boolean') return [`${indent}<${String(v)}/>`];
  if (typeof v === 'number') return [Number.isInteger(v) ? `${indent}<integer>${v}</integer>` : `${indent}<real>${v}</real>`];
  if (Array.isArray(v)) return [`${indent}<array>`, ...v.flatMap((x) => plistValue(x, `${indent}\t`)), `${indent}</array>`];
  if (typeof v === 'object' && v !== null) {
    return [`${indent}<dict>`, ...Object.entries(v).flatMap(([k, x]) => [`${indent}\t<key>${xml(k)}</key>`, ...plistValue(x, `${indent}\t`)]), `${indent}</dict>`];
  }
  throw new Error(`no plist form for ${String(v)}`);
}

/** The profile's settings: every leaf, nested by section, at its default or example value. */
export function mobileconfigValues(schema: z.ZodType = configSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of policies(schema)) {
    let node = out;
    for (const s of p.leaf.path.slice(0, -1)) node = (node[s] ??= {}) as Record<string, unknown>;
    node[p.leaf.path.at(-1) ?? ''] = p.value;
  }
  return out;
}

export function renderMobileconfig(schema: z.ZodType = configSchema): string {
  const settings = plistValue(mobileconfigValues(schema), '\t\t\t').slice(1, -1);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!--',
    '  Example configuration profile for Vigil. Upload it to your MDM (or install it with',
    '  `sudo profiles install -path com.vigil.agent.mobileconfig` for testing) after removing every key you do not',
    "  want to enforce: each key set here overrides the user's own config and cannot be changed on the Mac.",
    '  Values are the defaults; keys with no default (paths, the CA) hold examples you must replace.',
    '  macOS writes the payload to /Library/Managed Preferences/com.vigil.agent.plist, which Vigil reads.',
    '  Generated from src/config/schema.ts by `npm run docs:schemas`; do not edit by hand.',
    '-->',
    '<plist version="1.0">',
    '<dict>',
    '\t<key>PayloadContent</key>',
    '\t<array>',
    '\t\t<dict>',
    '\t\t\t<key>PayloadType</key>',
    '\t\t\t<string>com.vigil.agent</string>',
    '\t\t\t<key>PayloadIdentifier</key>',
    '\t\t\t<string>com.example.vigil.settings</string>',
    '\t\t\t<key>PayloadUUID</key>',
    `\t\t\t<string>${PAYLOAD_UUID}</string>`,
    '\t\t\t<key>PayloadVersion</key>',
    '\t\t\t<integer>1</integer>',
    '\t\t\t<key>PayloadDisplayName</key>',
    '\t\t\t<string>Vigil agent settings</string>',
    ...settings.map((l) => l.slice(1)),
    '\t\t</dict>',
    '\t</array>',
    '\t<key>PayloadDisplayName</key>',
    '\t<string>Vigil</string>',
    '\t<key>PayloadDescription</key>',
    '\t<string>Settings for the Vigil endpoint agent.</string>',
    '\t<key>PayloadIdentifier</key>',
    '\t<string>com.example.vigil</string>',
    '\t<key>PayloadOrganization</key>',
    '\t<string>Example Corp</string>',
    '\t<key>PayloadScope</key>',
    '\t<string>System</string>',
    '\t<key>PayloadType</key>',
    '\t<string>Configuration</string>',
    '\t<key>PayloadUUID</key>',
    `\t<string>${PROFILE_UUID}</string>`,
    '\t<key>PayloadVersion</key>',
    '\t<integer>1</integer>',
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

// ------------------------------------------------------------------------------------------------ Windows ADMX

function sections(ps: readonly Policy[]): string[][] {
  const seen = new Map<string, string[]>();
  for (const p of ps) {
    const section = p.leaf.path.slice(0, -1);
    for (let i = 1; i <= section.length; i++) seen.set(section.slice(0, i).join('.'), section.slice(0, i));
  }
  return [...seen.values()];
}

function admxElement(p: Policy): string[] {
  const id = `${p.name}_Value`;
  const valueName = xml(p.leaf.path.at(-1) ?? '');
  switch (p.element) {
    case 'enum':
      return [
        `        <enum id="${id}" valueName="${valueName}" required="true">`,
        ...(p.leaf.values ?? []).map((v) => `          <item displayName="$(string.${p.name}_${idSafe(v)})"><value><string>${xml(v)}</string></value></item>`),
        '        </enum>',
      ];
    case 'text':
      return [`        <text id="${id}" valueName="${valueName}" required="true" expandable="false" />`];
    case 'multiText':
      return [`        <multiText id="${id}" valueName="${valueName}" required="true" />`];
    case 'boolean':
      return [
        `        <boolean id="${id}" valueName="${valueName}">`,
        '          <trueValue><decimal value="1" /></trueValue>',
        '          <falseValue><decimal value="0" /></falseValue>',
        '        </boolean>',
      ];
    case 'decimal': {
      const range = dwordRange(p.schema) ?? { min: 0, max: DWORD_MAX };
      // maxValue must be given: ADMX defaults it to 9999.
      return [`        <decimal id="${id}" valueName="${valueName}" required="true" minValue="${range.min}" maxValue="${range.max}" />`];
    }
  }
}

export function renderAdmx(schema: z.ZodType = configSchema): string {
  const ps = policies(schema);
  const categories = sections(ps).flatMap((s) => [
    `    <category name="${categoryId(s)}" displayName="$(string.Cat_${categoryId(s)})">`,
    `      <parentCategory ref="${categoryId(s.slice(0, -1))}" />`,
    '    </category>',
  ]);
  const policyLines = ps.flatMap((p) => {
    const key = [WIN32_POLICY_KEY, ...p.leaf.path.slice(0, -1)].join('\\');
    return [
      `    <policy name="${p.name}" class="Both" displayName="$(string.${p.name})" explainText="$(string.${p.name}_Help)" presentation="$(presentation.${p.name})" key="${xml(key)}">`,
      `      <parentCategory ref="${p.category}" />`,
      '      <supportedOn ref="SUPPORTED_Vigil01" />',
      '      <elements>',
      ...admxElement(p),
      '      </elements>',
      '    </policy>',
    ];
  });
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<!--',
    "  Administrative template for Vigil. Copy vigil.admx to %SystemRoot%\\PolicyDefinitions (or the domain's",
    `  Central Store) and en-US\\vigil.adml to its en-US folder. Policies write HKLM or HKCU\\${WIN32_POLICY_KEY}`,
    '  (one subkey per config section), which Vigil reads (src/config/managed-win32.ts); machine policy wins over',
    '  user policy. Fractional numbers are text boxes and lists are one item per line: a DWORD holds neither.',
    '  Generated from src/config/schema.ts by `npm run docs:schemas`; do not edit by hand.',
    '-->',
    '<policyDefinitions xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" revision="1.0" schemaVersion="1.0" xmlns="http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions">',
    '  <policyNamespaces>',
    '    <target prefix="vigil" namespace="Vigil.Policies.Agent" />',
    '    <using prefix="windows" namespace="Microsoft.Policies.Windows" />',
    '  </policyNamespaces>',
    '  <resources minRequiredRevision="1.0" />',
    '  <supportedOn>',
    '    <definitions>',
    '      <definition name="SUPPORTED_Vigil01" displayName="$(string.SUPPORTED_Vigil01)" />',
    '    </definitions>',
    '  </supportedOn>',
    '  <categories>',
    '    <category name="Vigil" displayName="$(string.Cat_Vigil)" />',
    ...categories,
    '  </categories>',
    '  <policies>',
    ...policyLines,
    '  </policies>',
    '</policyDefinitions>',
    '',
  ].join('\n');
}

// ------------------------------------------------------------------------------------------------ Windows ADML

function rangeText(schema: z.ZodType): string | undefined {
  if (!(schema instanceof z.ZodNumber)) return undefined;
  const parts: string[] = [];
  const lo = schema.minValue;
  const hi = schema.maxValue;
  if (lo !== null && Number.isFinite(lo)) parts.push(schema.safeParse(lo).success ? `at least ${lo}` : `more than ${lo}`);
  if (hi !== null && Number.isFinite(hi)) parts.push(schema.safeParse(hi).success ? `at most ${hi}` : `less than ${hi}`);
  return parts.length > 0 ? `Allowed: ${parts.join(' and ')}.` : undefined;
}

function helpText(p: Policy): string {
  // Markdown code spans read as stray backticks in the Group Policy editor.
  const description = (p.leaf.description ?? '').replace(/`([^`]*)`/g, '$1');
  const parts = description === '' ? [] : [description];
  if (p.element === 'multiText') parts.push('One item per line.');
  if (p.leaf.kind === 'json' && p.element === 'text') parts.push('A JSON value.');
  const range = rangeText(p.schema);
  if (range) parts.push(range);
  if (!p.hasDefault) parts.push('Not set by default.');
  else if (p.leaf.kind === 'boolean') parts.push(`Default: ${p.value === true ? 'enabled' : 'disabled'}.`);
  else if (Array.isArray(p.value)) parts.push(p.value.length === 0 ? 'Default: none.' : `Default: ${p.value.map(asText).join(', ')}.`);
  else parts.push(`Default: ${asText(p.value)}.`);
  parts.push(`Config key: ${p.key}.`);
  return parts.join(' ');
}

function presentation(p: Policy, label: string): string {
  const ref = `${p.name}_Value`;
  switch (p.element) {
    case 'enum': {
      const index = (p.leaf.values ?? []).indexOf(asText(p.value));
      return `<dropdownList refId="${ref}" noSort="true"${index >= 0 ? ` defaultItem="${index}"` : ''}>${label}</dropdownList>`;
    }
    case 'text':
      return p.hasDefault
        ? `<textBox refId="${ref}"><label>${label}</label><defaultValue>${xml(asText(p.value))}</defaultValue></textBox>`
        : `<textBox refId="${ref}"><label>${label}</label></textBox>`;
    case 'multiText':
      return `<multiTextBox refId="${ref}">${label}</multiTextBox>`;
    case 'boolean':
      return `<checkBox refId="${ref}" defaultChecked="${String(p.value === true)}">${label}</checkBox>`;
    case 'decimal':
      return `<decimalTextBox refId="${ref}" defaultValue="${asText(p.value)}">${label}</decimalTextBox>`;
  }
}

export function renderAdml(schema: z.ZodType = configSchema): string {
  const ps = policies(schema);
  const strings = [
    '      <string id="SUPPORTED_Vigil01">Vigil 0.1 and later</string>',
    '      <string id="Cat_Vigil">Vigil</string>',
    ...sections(ps).map((s) => `      <string id="Cat_${categoryId(s)}">${xml(sectionTitle(s))}</string>`),
    ...ps.flatMap((p) => [
      `      <string id="${p.name}">${xml(humanize(p.leaf.path.at(-1) ?? ''))}</string>`,
      `      <string id="${p.name}_Help">${xml(helpText(p))}</string>`,
      ...(p.leaf.values ?? []).map((v) => `      <string id="${p.name}_${idSafe(v)}">${xml(v === p.value ? `${v} (default)` : v)}</string>`),
    ]),
  ];
  const presentations = ps.map((p) => `      <presentation id="${p.name}">${presentation(p, xml(humanize(p.leaf.path.at(-1) ?? '')))}</presentation>`);
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<policyDefinitionResources xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" revision="1.0" schemaVersion="1.0" xmlns="http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions">',
    '  <displayName>Vigil</displayName>',
    '  <description>Settings for the Vigil endpoint agent.</description>',
    '  <resources>',
    '    <stringTable>',
    ...strings,
    '    </stringTable>',
    '    <presentationTable>',
    ...presentations,
    '    </presentationTable>',
    '  </resources>',
    '</policyDefinitionResources>',
    '',
  ].join('\n');
}

/** build/mdm paths, relative to the repository root, with their generators. */
export const MDM_TEMPLATES: Readonly<Record<string, () => string>> = {
  'build/mdm/com.vigil.agent.mobileconfig': () => renderMobileconfig(),
  'build/mdm/vigil.admx': () => renderAdmx(),
  'build/mdm/en-US/vigil.adml': () => renderAdml(),
};
