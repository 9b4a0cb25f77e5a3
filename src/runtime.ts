import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from './agent/agent.js';
import { loadConfig, type ConfigLayer, type LoadedConfig } from './config/load.js';
import { createLogger, type Logger } from './logging/logger.js';
import type { LogLevel } from './logging/levels.js';
import { bundledPolicy, BUNDLED_POLICY_SOURCE, loadPolicyFile } from './policy/load.js';
import type { Policy } from './policy/schema.js';
import { currentPlatform, loadPlatformSupport, type PlatformSupport } from './posture/platforms.js';
import type { Platform } from './posture/types.js';
import { postureReportSchema, type PostureReport } from './protocol/report.js';
import { writeFileAtomic } from './state/atomic.js';
import { PUSHED_POLICY_SOURCE, readPushedPolicy } from './reporting/pushed-policy.js';

export interface GlobalOptions {
  config?: string;
  stateDir?: string;
  socket?: string;
  logLevel?: string;
}

export interface Runtime {
  loaded: LoadedConfig;
  logger: Logger;
  platform: Platform;
  support: PlatformSupport;
  policy: Policy;
  policySource: string;
  createAgent(): Agent;
  statusFile: string;
}

/** MDM settings kept in the OS's own store; Linux uses /etc/vigil/managed.d, read by the loader itself. */
async function osManagedSettings(): Promise<ConfigLayer[]> {
  const platform = process.platform;
  if (platform !== 'darwin' && platform !== 'win32') return [];
  const reader = platform === 'darwin' ? await import('./config/managed-darwin.js') : await import('./config/managed-win32.js');
  return (await reader.readManagedSettings()).map((l) => ({ ...l, kind: 'managed' as const }));
}

/** Config, logging and policy, resolved once per command from the global flags. */
export async function loadRuntime(opts: GlobalOptions, mode: 'cli' | 'daemon'): Promise<Runtime> {
  const loaded = await loadConfig({
    ...(opts.config ? { configFile: opts.config } : {}),
    flags: { logLevel: opts.logLevel, stateDir: opts.stateDir, ...(opts.socket === undefined ? {} : { agent: { socket: opts.socket } }) },
    readManaged: osManagedSettings,
  });
  const level: LogLevel = loaded.config.logLevel;
  const logger = createLogger({
    level,
    console: true,
    ...(mode === 'daemon' ? { file: { dir: loaded.logDir } } : {}),
  });
  for (const w of loaded.warnings) logger.warn(w);
  let policySource = loaded.config.policyFile ?? BUNDLED_POLICY_SOURCE;
  let policy = loaded.config.policyFile ? await loadPolicyFile(loaded.config.policyFile) : bundledPolicy();
  // A configured policy file is the admin's explicit choice; otherwise the control plane's last push wins.
  if (!loaded.config.policyFile) {
    const pushed = await readPushedPolicy(loaded.stateDir);
    if (pushed?.ok) {
      policy = pushed.policy;
      policySource = PUSHED_POLICY_SOURCE;
    } else if (pushed) logger.warn(`${pushed.problem}; using the bundled policy until the control plane sends one`);
  }
  const platform = currentPlatform();
  const support = await loadPlatformSupport(platform);
  const scan = loaded.config.scan;
  return {
    loaded,
    logger,
    platform,
    support,
    policy,
    policySource,
    statusFile: join(loaded.stateDir, 'status.json'),
    createAgent: () => new Agent(policy, platform, support, { ...scan, factCacheFile: join(loaded.stateDir, 'facts-cache.json') }),
  };
}

export async function saveStatus(file: string, report: PostureReport): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(report)}\n`, 0o600);
}

export type StoredStatus = { ok: true; report: PostureReport } | { ok: false; problem: string };

/** The last report a scan saved; a corrupt file is described, never fatal: the next scan rewrites it. */
export async function readStatus(file: string): Promise<StoredStatus | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { ok: false, problem: `${file}: cannot read: ${(err as Error).message}` };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { ok: false, problem: `${file}: not valid JSON (corrupted?); the next scan will replace it` };
  }
  const parsed = postureReportSchema.safeParse(doc);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, problem: `${file}: not a Vigil report (${first ? `${first.path.join('.')}: ${first.message}` : 'invalid'}); the next scan will replace it` };
  }
  return { ok: true, report: parsed.data };
}
