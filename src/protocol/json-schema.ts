import { z } from 'zod';
import { postureReportSchema } from './report.js';

/** JSON Schemas published under docs/, generated from the zod schemas so they cannot drift. */
export const PUBLISHED_SCHEMAS = {
  'docs/report.schema.json': () => ({
    $id: 'https://vigil.dev/schemas/report-v1.json',
    ...z.toJSONSchema(postureReportSchema, { target: 'draft-2020-12', io: 'output' }),
  }),
} as const;

export function renderSchema(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
