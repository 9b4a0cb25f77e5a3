import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderConfigReference } from '../../src/config/reference.js';
import { PUBLISHED_SCHEMAS, renderSchema } from '../../src/protocol/json-schema.js';
import { ROOT } from '../helpers.js';

describe('generated docs are current (run `npm run docs:schemas` after changing a schema)', () => {
  it.each(Object.entries(PUBLISHED_SCHEMAS))('%s', (path, make) => {
    expect(readFileSync(join(ROOT, path), 'utf8')).toBe(renderSchema(make()));
  });

  it('docs/config.md', () => {
    expect(readFileSync(join(ROOT, 'docs/config.md'), 'utf8')).toBe(renderConfigReference());
  });
});
