// Regenerates the JSON Schemas and the config reference under docs/ from the zod schemas.
import { writeFileSync } from 'node:fs';
import { PUBLISHED_SCHEMAS, renderSchema } from '../dist/src/protocol/json-schema.js';
import { renderConfigReference } from '../dist/src/config/reference.js';

for (const [path, make] of Object.entries(PUBLISHED_SCHEMAS)) {
  writeFileSync(path, renderSchema(make()));
  process.stdout.write(`wrote ${path}\n`);
}
writeFileSync('docs/config.md', renderConfigReference());
process.stdout.write('wrote docs/config.md\n');
