import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseListen } from '../control-plane/config.js';
import { parseOsRule } from './os-rule.js';

/**
 * vigil-authz's settings. Keys match the CLI flags in camelCase, so a config file and flags mean the same
 * thing (as for vigil-control-plane).
 */
export const authzConfigSchema = z.strictObject({
  listen: z
    .string()
    .refine((s) => parseListen(s) !== null, 'host:port, e.g. 127.0.0.1:9180')
    .default('127.0.0.1:9180')
    .describe('Where the gateway asks; keep it on loopback or a private network: it serves the device list to OPA'),
  controlPlaneUrl: z.url({ protocol: /^https$/, error: 'an https:// URL of the control plane' }),
  caRoot: z.string().min(1).describe('step-ca root (PEM): the control plane server certificate is verified against it'),
  tokenFile: z.string().min(1).describe('File holding a gateway-scoped API token (vigil-control-plane token create --scope gateway)'),
  fixUrl: z
    .url({ protocol: /^https?$/, error: 'an http(s) URL where users learn how to fix their device; {device} and {reason} are filled in' })
    .optional(),
  /** Longer than this without a working event stream, and answers are no longer trusted. */
  maxLagSeconds: z.number().int().min(1).max(3600).default(15),
  /** Past maxLagSeconds: `deny` everything, or keep answering from the `last-known` state for lastKnownGraceSeconds more. */
  onLag: z.enum(['deny', 'last-known']).default('deny'),
  lastKnownGraceSeconds: z.number().int().min(1).max(3600).default(300),
  /** `limited` lets limited devices through too; blocked never passes. */
  minimumLevel: z.enum(['full', 'limited']).default('full'),
  /** ZTNA rules on top of the level: the OS (e.g. "macOS 13+", "Windows 11", "Ubuntu 22.04+"), management. */
  requireOs: z
    .array(z.string().refine((s) => parseOsRule(s) !== null, 'an OS rule such as "macOS 13+", "Windows 11" or "Ubuntu 22.04+"'))
    .min(1)
    .optional(),
  requireManaged: z.boolean().default(false),
  /** A stream that says nothing (not even its 15 s ping) for this long is dead; it is dropped and reopened. */
  streamIdleSeconds: z.number().int().min(2).max(600).default(40),
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
});
export type AuthzConfig = z.infer<typeof authzConfigSchema>;

/** Reads a JSON config file; flags given on the command line win over its keys. */
export async function loadAuthzConfigFile(path: string | undefined): Promise<Record<string, unknown>> {
  if (path === undefined) return {};
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read the config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new Error(`${path}: not valid JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${path}: the config file must hold a JSON object`);
  return parsed as Record<string, unknown>;
}

/** One line per problem: the key, what it was, what was expected. */
export function configErrors(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`).join('; ');
}
