import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sjson from 'secure-json-parse';
import { agentSocket, defaultPaths, type VigilPaths } from '../platform/paths.js';
import type { Platform } from '../posture/types.js';

/**
 * Where the agent's local API is, found the way loadConfig would find it but without the config schema:
 * a client such as `vigil status` is a short process whose cost is mostly module loading, and the schema
 * library alone costs more CPU than the whole of Node's start-up. Only the two keys that locate the agent
 * are read (stateDir, agent.socket), from the same layers in the same order: system file, user file (or
 * --config), environment, flags, managed drop-ins. A file that cannot be read or parsed is skipped here:
 * the service's own loader reports it, and a client could not fix it anyway. MDM settings kept in the
 * macOS and Windows stores are not read; there the socket is moved with --socket (docs/local-api.md).
 * test/config/locate.test.ts holds this to loadConfig's answer.
 */
export interface LocateOptions {
  configFile?: string;
  flags?: { stateDir?: string | undefined; socket?: string | undefined };
  env?: NodeJS.ProcessEnv;
  platform?: Platform;
  paths?: VigilPaths;
}

export interface AgentLocation {
  stateDir: string;
  socket: string;
}

function readLayer(path: string): Record<string, unknown> | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    const value: unknown = sjson.parse(text.startsWith('\uFEFF') ? text.slice(1) : text, undefined, { protoAction: 'error', constructorAction: 'error' });
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function managedFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith('.json'))
      .sort()
      .map((n) => join(dir, n));
  } catch {
    return [];
  }
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export function locateAgent(opts: LocateOptions = {}): AgentLocation {
  const platform = opts.platform ?? (process.platform as Platform);
  const env = opts.env ?? process.env;
  const paths = opts.paths ?? defaultPaths(platform, env);
  let stateDir: string | undefined;
  let socket: string | undefined;
  const apply = (layer: { stateDir?: unknown; agent?: unknown } | undefined): void => {
    if (!layer) return;
    stateDir = text(layer.stateDir) ?? stateDir;
    const agent = layer.agent;
    if (typeof agent === 'object' && agent !== null) socket = text((agent as { socket?: unknown }).socket) ?? socket;
  };
  const systemFile = env.VIGIL_SYSTEM_CONFIG ?? paths.systemConfig;
  apply(readLayer(systemFile));
  const userFile = opts.configFile ?? env.VIGIL_CONFIG;
  if (userFile) apply(readLayer(userFile));
  else if (paths.userConfig !== systemFile) apply(readLayer(paths.userConfig));
  apply({ stateDir: env.VIGIL_STATE_DIR, agent: { socket: env.VIGIL_AGENT_SOCKET } });
  apply({ stateDir: opts.flags?.stateDir, agent: { socket: opts.flags?.socket } });
  const managedDir = env.VIGIL_MANAGED_DIR ?? paths.managedDir;
  if (managedDir) for (const f of managedFiles(managedDir)) apply(readLayer(f));
  const dir = stateDir ?? paths.stateDir;
  return { stateDir: dir, socket: agentSocket(paths, dir, socket, platform) };
}

/** From the CLI's global flags (--config, --state-dir, --socket), as every client command needs it. */
export function locateFromGlobals(g: { config?: string | undefined; stateDir?: string | undefined; socket?: string | undefined }): AgentLocation {
  return locateAgent({ ...(g.config === undefined ? {} : { configFile: g.config }), flags: { stateDir: g.stateDir, socket: g.socket } });
}
