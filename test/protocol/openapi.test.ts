import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policySchema } from '../../src/policy/schema.js';
import * as admin from '../../src/protocol/admin.js';
import { checkResultSchema, deviceFactsSchema, postureReportSchema, reasonSchema } from '../../src/protocol/report.js';
import * as wire from '../../src/protocol/wire.js';
import { startHarness, type Harness } from '../helpers/control-plane.js';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What the docs must agree with the code on: property names, required sets, nullability, enums. */
interface Shape {
  props?: Record<string, Shape>;
  required?: string[];
  items?: Shape;
  values?: Shape;
  enum?: string[];
  nullable?: true;
}

function deref(root: Json, s: unknown): Json {
  let cur = s;
  for (let i = 0; i < 20 && isObj(cur) && typeof cur.$ref === 'string'; i++) {
    let node: unknown = root;
    for (const part of cur.$ref.replace(/^#\//, '').split('/')) node = isObj(node) ? node[part] : undefined;
    if (!isObj(node)) throw new Error(`unresolved $ref ${cur.$ref}`);
    cur = node;
  }
  return isObj(cur) ? cur : {};
}

const meaningful = (s: Shape): boolean => s.props !== undefined || s.items !== undefined || s.values !== undefined || s.enum !== undefined;

function shape(root: Json, input: unknown): Shape {
  const s = deref(root, input);
  const variants = (Array.isArray(s.anyOf) ? s.anyOf : Array.isArray(s.oneOf) ? s.oneOf : null) as unknown[] | null;
  if (variants) {
    const nonNull = variants.filter((v) => deref(root, v).type !== 'null');
    if (nonNull.length !== 1) return {};
    return { ...shape(root, nonNull[0]), nullable: true };
  }
  const out: Shape = {};
  if (Array.isArray(s.allOf)) {
    for (const part of s.allOf) {
      const p = shape(root, part);
      out.props = { ...out.props, ...p.props };
      out.required = [...(out.required ?? []), ...(p.required ?? [])].sort();
    }
  }
  if (Array.isArray(s.type) && s.type.includes('null')) out.nullable = true;
  if (isObj(s.properties)) {
    out.props = { ...out.props };
    for (const [k, v] of Object.entries(s.properties)) out.props[k] = shape(root, v);
    out.required = [...new Set([...(out.required ?? []), ...(Array.isArray(s.required) ? (s.required as string[]) : [])])].sort();
  }
  if (s.items !== undefined) {
    const items = shape(root, s.items);
    if (meaningful(items)) out.items = items;
  }
  if (isObj(s.additionalProperties)) {
    const values = shape(root, s.additionalProperties);
    if (meaningful(values)) out.values = values;
  }
  if (Array.isArray(s.enum)) out.enum = (s.enum as unknown[]).map(String).sort();
  return out;
}

const COMPONENTS: Record<string, [z.ZodType, 'input' | 'output']> = {
  DeviceFacts: [deviceFactsSchema, 'output'],
  CheckResult: [checkResultSchema, 'output'],
  Reason: [reasonSchema, 'output'],
  PostureReport: [postureReportSchema, 'output'],
  EnrollRequest: [wire.enrollRequestSchema, 'input'],
  EnrollResponse: [wire.enrollResponseSchema, 'output'],
  ReportEnvelope: [wire.reportEnvelopeSchema, 'input'],
  ReportAck: [wire.reportAckSchema, 'output'],
  Directives: [wire.directivesSchema, 'output'],
  Policy: [policySchema, 'output'],
  Error: [wire.errorBodySchema, 'output'],
  CertInfo: [admin.certInfoSchema, 'output'],
  DecisionDocument: [admin.decisionDocumentSchema, 'output'],
  AccessLevelEvent: [admin.accessLevelEventSchema, 'output'],
  DeviceSummary: [admin.deviceSummarySchema, 'output'],
  DeviceList: [admin.deviceListSchema, 'output'],
  DeviceDetail: [admin.deviceDetailSchema, 'output'],
  ReportHistory: [admin.reportHistorySchema, 'output'],
  SecretCreateRequest: [admin.secretCreateRequestSchema, 'input'],
  SecretInfo: [admin.secretInfoSchema, 'output'],
  SecretCreateResponse: [admin.secretCreateResponseSchema, 'output'],
  SecretList: [admin.secretListSchema, 'output'],
  RecheckResponse: [admin.recheckResponseSchema, 'output'],
  DeviceOs: [admin.deviceOsSchema, 'output'],
  ApiTokenCreateRequest: [admin.apiTokenCreateRequestSchema, 'input'],
  ApiTokenInfo: [admin.apiTokenInfoSchema, 'output'],
  ApiTokenCreateResponse: [admin.apiTokenCreateResponseSchema, 'output'],
  ApiTokenList: [admin.apiTokenListSchema, 'output'],
};

let doc: Json;
beforeAll(async () => {
  const loaded = load(await readFile(join(import.meta.dirname, '../../docs/openapi.yaml'), 'utf8'));
  if (!isObj(loaded)) throw new Error('openapi.yaml is not a mapping');
  doc = loaded;
});

describe('docs/openapi.yaml', () => {
  it('is OpenAPI 3.1', () => {
    expect(doc.openapi).toBe('3.1.0');
  });

  it.each(Object.keys(COMPONENTS))('component %s matches the zod schema', (name) => {
    const entry = COMPONENTS[name];
    if (!entry) throw new Error(name);
    const [schema, io] = entry;
    const generated = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json;
    const documented = deref(doc, { $ref: `#/components/schemas/${name}` });
    expect(shape(doc, documented)).toEqual(shape(generated, generated));
  });

  it('every $ref resolves', () => {
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (isObj(v)) {
        if (typeof v.$ref === 'string') deref(doc, v);
        Object.values(v).forEach(walk);
      }
    };
    walk(doc);
  });
});

describe('the documented paths are the server routes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.cp.close();
  });

  it('every documented operation exists on the server', () => {
    const paths = doc.paths as Record<string, Json>;
    const ops: string[] = [];
    for (const [path, item] of Object.entries(paths)) {
      for (const method of Object.keys(item)) {
        const url = path.replace(/\{(\w+)\}/g, ':$1');
        ops.push(`${method.toUpperCase()} ${path}`);
        expect(h.cp.app.hasRoute({ method: method.toUpperCase(), url }), `${method} ${path}`).toBe(true);
      }
    }
    expect(ops.length).toBeGreaterThanOrEqual(17);
  });
});
