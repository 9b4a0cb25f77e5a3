// Regenerates the JSON Schemas, the config reference under docs/ and the MDM templates under build/mdm from the zod schemas.
import { writeFileSync } from 'node:fs';
import { PUBLISHED_SCHEMAS, renderSchema } from '../dist/src/protocol/json-schema.js';
import { renderConfigReference } from '../dist/src/config/reference.js';
import { MDM_TEMPLATES } from '../dist/src/config/mdm-templates.js';

for (const [path, make] of Object.entries(PUBLISHED_SCHEMAS)) {
  writeFileSync(path, renderSchema(make()));
  process.stdout.write(`wrote ${path}\n`);
}
writeFileSync('docs/config.md', renderConfigReference());
process.stdout.write('wrote docs/config.md\n');
for (const [path, render] of Object.entries(MDM_TEMPLATES)) {
  writeFileSync(path, render());
  process.stdout.write(`wrote ${path}\n`);
}
