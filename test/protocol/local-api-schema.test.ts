import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { sampleState } from './local-api-fixtures.js';

/** The published JSON Schema is usable by someone without zod: it accepts real lines and rejects bad ones. */
describe('docs/local-api.schema.json', () => {
  const doc = JSON.parse(readFileSync(join(ROOT, 'docs/local-api.schema.json'), 'utf8')) as Record<string, unknown>;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema(doc);
  const id = String(doc.$id);
  const check = (pointer: string, value: unknown): boolean => {
    // Through a $ref: with shared parts in $defs, the node at the pointer may itself be only a $ref.
    return ajv.validate({ $ref: `${id}#${pointer}` }, value);
  };

  it('validates requests', () => {
    expect(check('/properties/request', { v: 1, id: 1, method: 'recheck', params: { checks: ['firewall'] } })).toBe(true);
    expect(check('/properties/request', { v: 1, method: 'state' })).toBe(false);
    expect(check('/properties/params/properties/recheck', { checks: ['Not An Id'] })).toBe(false);
  });

  it('validates the server frames, including a whole state event', () => {
    const state = JSON.parse(JSON.stringify(sampleState())) as unknown;
    expect(check('/properties/serverFrame', { type: 'hello', protocol: 1, agentVersion: '0.1.0', mode: 'service', pid: 1 })).toBe(true);
    expect(check('/properties/serverFrame', { type: 'event', event: 'state', state })).toBe(true);
    expect(check('/properties/results/properties/state', state)).toBe(true);
    expect(check('/properties/serverFrame', { type: 'error', id: null, error: { code: 'no-such-code', message: 'x' } })).toBe(false);
  });
});
