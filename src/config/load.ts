import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import sjson from 'secure-json-parse';
import { agentSocket, defaultPaths, isPrivileged, type AgentMode, type VigilPaths } from '../platform/paths.js';
import type { Platform } from '../posture/types.js';
import { enrollmentSource, readSavedEnrollment } from './enrollment-file.js';
import { describeIssues, describeValue, nearest, UsageError } from './errors.js';
import { keysAt, leaves, type Leaf } from './introspect.js';
import { configSchema, type VigilConfig } from './schema.js';

export interface ConfigLayer {
  /** Shown to the user: a file path, "environment VIGIL_X", "flag --x", "default". */
  source: string;
  kind: 'default' | 'system' | 'enrollment' | 'user' | 'env' | 'flag' | 'managed';
  values: Record<string, unknown>;
}

export interface LoadOptions {
  platform?: Platform;
  env?: NodeJS.ProcessEnv;
  /** --config: replaces the user file, and unlike it must exist. */
  configFile?: string;
  /** Global flags already mapped to config keys (e.g. { logLevel: 'debug', stateDir: '/tmp/x' }). */
  flags?: Record<string, unknown>;
  paths?: VigilPaths;
  /** MDM settings from the OS's own store (macOS managed preferences, Windows policy registry). */
  readManaged?: () => Promise<ConfigLayer[]>;
}

export interface LoadedConfig {
  config: VigilConfig;
  /** Dotted leaf path -> the layer that set it ("default" when none did). */
  sources: Map<string, string>;
  /** Dotted leaf paths fixed by managed settings. */
  managed: Set<string>;
  stateDir: string;
  logDir: string;
  /** `service` when the process is privileged (root, LocalSystem), whatever its state dir. */
  mode: AgentMode;
  /** The local API address: served by the daemon, connected to by clients. */
  socket: string;
  warnings: string[];
}

/** Environment variables Vigil reads that are not config keys. */
export const RESERVED_ENV = new Set(['VIGIL_CONFIG', 'VIGIL_SYSTEM_CONFIG', 'VIGIL_MANAGED_DIR', 'VIGIL_NATIVE_SCRIPTS_DIR']);

const LEAVES: readonly Leaf[] = leaves(configSchema);

export function envName(path: readonly string[]): string {
  return `VIGIL_${path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_')}`;
}

const ENV_TO_LEAF = new Map(LEAVES.map((l) => [envName(l.path), l]));

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function readJsonFile(path: string, required: boolean): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    if (code === 'ENOENT') throw new UsageError(`${path}: file not found`);
    if (code === 'EACCES') throw new UsageError(`${path}: permission denied; make it readable by this user`);
    throw new UsageError(`${path}: cannot read: ${(err as Error).message}`);
  }
  return parseJsonObject(path, text);
}

/** JSON.parse with an error that names the file and the line and column. */
export function parseJsonObject(path: string, text: string): Record<string, unknown> {
  let value: unknown;
  // Notepad saves UTF-8 with a byte-order mark, and MDM configs are often written there.
  const json = text.startsWith('\uFEFF') ? text.slice(1) : text;
  try {
    value = parseJsonStrictly(json);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`${path}: ${err.message}`);
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    let where = '';
    if (pos?.[1]) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      where = ` at line ${line} column ${Number(pos[1]) - before.lastIndexOf('\n')}`;
    }
    throw new UsageError(`${path}: invalid JSON${where}: ${msg.replace(/ in JSON at position \d+.*$/, '').replace(/^JSON\.parse: /, '')}`);
  }
  if (!isPlainObject(value)) throw new UsageError(`${path}: expected a JSON object at the top level, got ${describeValue(value)}`);
  return value;
}

/**
 * JSON.parse that refuses `__proto__` (and `constructor.prototype`): merged into the layered config, such a
 * key would reach Object.prototype, so a hostile file is refused rather than interpreted.
 */
function parseJsonStrictly(text: string): unknown {
  try {
    return sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    if (err instanceof SyntaxError && /forbidden/.test(err.message)) throw new UsageError('the keys "__proto__" and "constructor.prototype" are not allowed');
    throw err;
  }
}

function coerceEnv(name: string, raw: string, leaf: Leaf): unknown {
  const fail = (what: string): never => {
    throw new UsageError(`environment ${name}: ${leaf.path.join('.')}: expected ${what}, got ${describeValue(raw)}`);
  };
  switch (leaf.kind) {
    case 'number': {
      const n = Number(raw);
      return raw.trim() === '' || !Number.isFinite(n) ? fail('a number') : n;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      return fail('true or false');
    case 'json':
      try {
        return parseJsonStrictly(raw);
      } catch {
        return fail('JSON');
      }
    default:
      return raw;
  }
}

function setAt(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = target;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (!isPlainObject(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1];
  if (last !== undefined) cur[last] = value;
}

function envLayer(env: NodeJS.ProcessEnv, warnings: string[]): ConfigLayer | undefined {
  const values: Record<string, unknown> = {};
  let any = false;
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('VIGIL_') || raw === undefined || RESERVED_ENV.has(name) || name.startsWith('VIGIL_TEST_')) continue;
    const leaf = ENV_TO_LEAF.get(name);
    if (!leaf) {
      const hint = nearest(name, [...ENV_TO_LEAF.keys()]);
      warnings.push(`ignoring unknown environment variable ${name}${hint ? ` (did you mean ${hint}?)` : ''}`);
      continue;
    }
    setAt(values, leaf.path, coerceEnv(name, raw, leaf));
    any = true;
  }
  return any ? { source: 'environment', kind: 'env', values } : undefined;
}

/** Merges `src` into `dst`, recording which layer set each leaf; objects merge, everything else replaces. */
function mergeLayer(dst: Record<string, unknown>, src: Record<string, unknown>, source: string, sources: Map<string, string>, prefix = ''): void {
  for (const [key, value] of Object.entries(src)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isPlainObject(value) && isPlainObject(dst[key])) {
      mergeLayer(dst[key], value, source, sources, path);
      continue;
    }
    if (isPlainObject(value) && !LEAVES.some((l) => l.path.join('.') === path)) {
      dst[key] = {};
      mergeLayer(dst[key] as Record<string, unknown>, value, source, sources, path);
      continue;
    }
    dst[key] = value;
    for (const k of [...sources.keys()]) if (k.startsWith(`${path}.`)) sources.delete(k);
    sources.set(path, source);
  }
}

/** Linux MDM drop-ins: every *.json in the managed directory, in name order. */
export async function readManagedDir(dir: string): Promise<ConfigLayer[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError(`${dir}: cannot read managed settings: ${(err as Error).message}`);
  }
  const layers: ConfigLayer[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const values = await readJsonFile(path, true);
    if (values) layers.push({ source: path, kind: 'managed', values });
  }
  return layers;
}

/**
 * Builds the effective config from its layers, lowest first: defaults, system file, user file (or
 * --config), environment, flags, and managed settings on top, which no lower layer can override.
 * Throws UsageError with one line per problem, each naming where the bad value came from.
 */
export async function loadConfig(opts: LoadOptions = {}): Promise<LoadedConfig> {
  const platform = opts.platform ?? (process.platform as Platform);
  const env = opts.env ?? process.env;
  const paths = opts.paths ?? defaultPaths(platform, env);
  const warnings: string[] = [];
  const layers: ConfigLayer[] = [];

  const systemFile = env.VIGIL_SYSTEM_CONFIG ?? paths.systemConfig;
  const system = await readJsonFile(systemFile, false);
  if (system) layers.push({ source: systemFile, kind: 'system', values: system });

  const userFile = opts.configFile ?? env.VIGIL_CONFIG;
  if (userFile) {
    const user = await readJsonFile(userFile, true);
    if (user) layers.push({ source: userFile, kind: 'user', values: user });
  } else if (paths.userConfig !== systemFile) {
    const user = await readJsonFile(paths.userConfig, false);
    if (user) layers.push({ source: paths.userConfig, kind: 'user', values: user });
  }

  const fromEnv = envLayer(env, warnings);
  if (fromEnv) layers.push(fromEnv);

  const flagValues = Object.fromEntries(Object.entries(opts.flags ?? {}).filter(([, v]) => v !== undefined));
  if (Object.keys(flagValues).length > 0) layers.push({ source: 'command-line flags', kind: 'flag', values: flagValues });

  const managedDir = env.VIGIL_MANAGED_DIR ?? paths.managedDir;
  const managedLayers = [
    ...(managedDir ? await readManagedDir(managedDir) : []),
    ...(opts.readManaged ? await opts.readManaged() : []),
  ];
  layers.push(...managedLayers);

  let built = mergeAndParse(layers);
  // What `vigil enroll` saved lives in the state dir, which the other layers locate; its schema cannot set
  // stateDir, so reading it cannot move the state dir. It ranks above the system file: it names the
  // servers this device actually enrolled with.
  const saved = await readSavedEnrollment(built.config.stateDir ?? paths.stateDir);
  if (saved) {
    const at = layers.findIndex((l) => l.kind !== 'system');
    layers.splice(at < 0 ? layers.length : at, 0, { source: enrollmentSource(built.config.stateDir ?? paths.stateDir), kind: 'enrollment', values: saved });
    built = mergeAndParse(layers);
  }
  const { config, sources } = built;
  const managed = new Set<string>();
  for (const [path, source] of sources) if (managedLayers.some((l) => l.source === source)) managed.add(path);
  for (const leaf of LEAVES) {
    const key = leaf.path.join('.');
    if (!sources.has(key)) sources.set(key, 'default');
  }
  const stateDir = config.stateDir ?? paths.stateDir;
  const logDir = config.logDir ?? (config.stateDir ? join(config.stateDir, 'logs') : paths.logDir);
  const mode: AgentMode = isPrivileged(platform, env) ? 'service' : 'user';
  if (platform === 'linux' && mode === 'service' && sources.get('identity.keyStorage') === 'default') {
    // A system service has no user session, so no Secret Service to hold a data key; a root-only file is
    // what it can have (status says so). macOS and Windows services keep the System keychain / Credential Manager.
    config.identity.keyStorage = 'file';
    sources.set('identity.keyStorage', 'default for a Linux service');
  }
  return { config, sources, managed, stateDir, logDir, mode, socket: agentSocket(paths, stateDir, config.agent.socket, platform), warnings };
}

function mergeAndParse(layers: readonly ConfigLayer[]): { config: VigilConfig; sources: Map<string, string> } {
  const merged: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const layer of layers) mergeLayer(merged, layer.values, layer.source, sources);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = describeIssues(parsed.error, merged, (p) => keysAt(configSchema, p)).map((issue) => {
      const source = sourceOf(sources, issue.path) ?? 'config';
      return `${source}: ${issue.message}`;
    });
    throw new UsageError(lines.join('\n'));
  }
  return { config: parsed.data, sources };
}

function sourceOf(sources: Map<string, string>, path: string): string | undefined {
  const parts = path.split('.');
  for (let i = parts.length; i > 0; i--) {
    const hit = sources.get(parts.slice(0, i).join('.'));
    if (hit) return hit;
  }
  // An object-valued key set wholesale (e.g. "scan": {...}) is recorded at its children.
  for (const [k, v] of sources) if (k.startsWith(`${path}.`)) return v;
  return undefined;
}
