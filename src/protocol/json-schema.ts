import { z } from 'zod';
import { METHOD_PARAMS, METHOD_RESULTS, requestSchema, serverFrameSchema } from './local-api.js';
import { postureReportSchema } from './report.js';

/*
 * The local API is several schemas (a request, the server's frames, the params and result of each method);
 * one container keeps them in one file whose shared parts ($defs) are referenced, not repeated.
 */
const localApiSchemas = z
  .strictObject({
    request: requestSchema.describe('A line from a client'),
    serverFrame: serverFrameSchema.describe('A line from the service'),
    params: z.strictObject(METHOD_PARAMS).describe('`params` of each method'),
    results: z.strictObject(METHOD_RESULTS).describe('`result` of each method'),
  })
  .describe('Vigil local API, protocol version 1 (docs/local-api.md). A container, not a document: validate a line against #/properties/request or #/properties/serverFrame.');

/** JSON Schemas published under docs/, generated from the zod schemas so they cannot drift. */
export const PUBLISHED_SCHEMAS = {
  'docs/report.schema.json': () => ({
    $id: 'https://vigil.dev/schemas/report-v1.json',
    ...z.toJSONSchema(postureReportSchema, { target: 'draft-2020-12', io: 'output' }),
  }),
  'docs/local-api.schema.json': () => ({
    $id: 'https://vigil.dev/schemas/local-api-v1.json',
    ...z.toJSONSchema(localApiSchemas, { target: 'draft-2020-12', io: 'output' }),
  }),
} as const;

export function renderSchema(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
