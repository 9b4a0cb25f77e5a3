// Regenerates the JSON Schemas under docs/ from the zod schemas (run after changing src/protocol).
import { writeFileSync } from 'node:fs';
import { PUBLISHED_SCHEMAS, renderSchema } from '../dist/src/protocol/json-schema.js';

for (const [path, make] of Object.entries(PUBLISHED_SCHEMAS)) {
  writeFileSync(path, renderSchema(make()));
  process.stdout.write(`wrote ${path}\n`);
}
