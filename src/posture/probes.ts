import { existsSync } from 'node:fs';
import { dirname, join, parse, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { CollectContext } from './collector.js';

/** A native probe script and the JSON contract its single stdout object must meet. */
export interface ProbeSpec<S extends z.ZodType> {
  /** Path below native-scripts/, e.g. "macos/posture.sh". */
  script: string;
  schema: S;
  timeoutMs: number;
}

export type ProbeContext = Pick<CollectContext, 'run' | 'env'>;

export class ProbeError extends Error {
  constructor(
    readonly script: string,
    message: string,
  ) {
    super(`probe ${script}: ${message}`);
    this.name = 'ProbeError';
  }
}

const SCRIPTS_DIR = 'native-scripts';

/**
 * Where native-scripts/ may be, nearest first, for a module living in `moduleDir`: the source tree
 * (src/posture -> repo root), the build (dist/src/posture -> repo root) and, inside a packaged Electron app,
 * the unpacked copy (resources/app.asar/... -> resources/app.asar.unpacked/native-scripts), because scripts
 * inside the asar archive cannot be executed by /bin/sh or PowerShell.
 */
export function nativeScriptsCandidates(moduleDir: string): string[] {
  const out: string[] = [];
  const root = parse(moduleDir).root;
  for (let dir = moduleDir; ; dir = dirname(dir)) {
    const segments = dir.split(sep);
    const asar = segments.lastIndexOf('app.asar');
    if (asar >= 0) {
      const unpacked = [...segments.slice(0, asar), 'app.asar.unpacked', ...segments.slice(asar + 1)].join(sep);
      out.push(join(unpacked, SCRIPTS_DIR));
    } else {
      out.push(join(dir, SCRIPTS_DIR));
    }
    if (dir === root || dirname(dir) === dir) break;
  }
  return [...new Set(out)];
}

let cachedDir: string | undefined;

/** The native-scripts directory: VIGIL_NATIVE_SCRIPTS_DIR when set, else the nearest candidate that exists. */
export function nativeScriptsDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.VIGIL_NATIVE_SCRIPTS_DIR;
  if (override) return override;
  if (cachedDir !== undefined) return cachedDir;
  const candidates = nativeScriptsCandidates(dirname(fileURLToPath(import.meta.url)));
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) throw new Error(`native-scripts directory not found; looked in: ${candidates.join(', ')}`);
  cachedDir = found;
  return found;
}

/** The command line that runs a probe: PowerShell without profile or prompts, sh scripts with /bin/sh. */
export function probeCommand(scriptPath: string): { command: string; args: string[] } {
  if (scriptPath.endsWith('.ps1')) {
    return {
      command: 'powershell.exe',
      args: ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', scriptPath],
    };
  }
  return { command: '/bin/sh', args: [scriptPath] };
}

/** Parses and validates a probe's stdout against its contract. Pure: tests feed it recorded output. */
export function parseProbeOutput<S extends z.ZodType>(spec: ProbeSpec<S>, stdout: string): z.infer<S> {
  let json: unknown;
  try {
    // PowerShell 5.1 may prefix a UTF-8 BOM when its output encoding is UTF-8.
    json = JSON.parse(stdout.replace(/^\uFEFF/, ''));
  } catch {
    throw new ProbeError(spec.script, `stdout is not JSON: ${stdout.slice(0, 120)}`);
  }
  const parsed = spec.schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ProbeError(spec.script, `output does not match its contract at ${first?.path.join('.') ?? '?'}: ${first?.message ?? ''}`);
  }
  return parsed.data;
}

/** Runs a probe and returns its validated JSON. Throws ProbeError on a non-zero exit or a broken contract. */
export async function runProbe<S extends z.ZodType>(ctx: ProbeContext, spec: ProbeSpec<S>): Promise<z.infer<S>> {
  const script = join(nativeScriptsDir(ctx.env), ...spec.script.split('/'));
  const { command, args } = probeCommand(script);
  const res = await ctx.run(command, args, { timeoutMs: spec.timeoutMs });
  if (res.code !== 0) {
    throw new ProbeError(spec.script, `exited with ${res.code === null ? 'a signal' : String(res.code)}: ${res.stderr.trim().slice(0, 200)}`);
  }
  return parseProbeOutput(spec, res.stdout);
}
