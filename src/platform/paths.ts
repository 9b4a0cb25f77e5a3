import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Platform } from '../posture/types.js';
import { defaultSocketPath } from '../protocol/local-api-constants.js';

/**
 * `service`: an agent run by the OS with privileges (root, LocalSystem): the device's one agent.
 * `user`: a local-only agent of one user (a developer's `npm start` where no service is installed).
 */
export type AgentMode = 'service' | 'user';

export interface VigilPaths {
  /** Machine-wide config, written by an admin or installer. */
  systemConfig: string;
  /** Directory of managed (MDM) JSON files that override every other layer (Linux only; see managed.ts). */
  managedDir?: string;
  userConfig: string;
  stateDir: string;
  logDir: string;
  /** Where the service's local API listens when `agent.socket` is not set and stateDir is this one. */
  socket: string;
}

/** Root on Unix; LocalSystem on Windows (its profile is under system32, whatever the language of the OS). */
export function isPrivileged(platform: Platform = process.platform as Platform, env: NodeJS.ProcessEnv = process.env): boolean {
  if (platform === 'win32') return /\\system32\\config\\systemprofile\\?$/i.test(env.USERPROFILE ?? '');
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The machine-wide locations of each OS, used by the service and by everyone on a device where it is installed. */
export function machinePaths(platform: Platform, env: NodeJS.ProcessEnv = process.env): VigilPaths {
  switch (platform) {
    case 'darwin':
      return {
        systemConfig: '/Library/Application Support/Vigil/config.json',
        userConfig: '/Library/Application Support/Vigil/config.json',
        // A subdirectory, so the parent (with config.json) can stay readable while state is root-only.
        stateDir: '/Library/Application Support/Vigil/state',
        logDir: '/Library/Logs/Vigil',
        socket: defaultSocketPath('darwin'),
      };
    case 'win32': {
      const programData = env.ProgramData ?? 'C:\\ProgramData';
      return {
        systemConfig: join(programData, 'Vigil', 'config.json'),
        userConfig: join(programData, 'Vigil', 'config.json'),
        stateDir: join(programData, 'Vigil', 'state'),
        logDir: join(programData, 'Vigil', 'logs'),
        socket: defaultSocketPath('win32'),
      };
    }
    case 'linux':
      return {
        systemConfig: '/etc/vigil/config.json',
        managedDir: '/etc/vigil/managed.d',
        userConfig: '/etc/vigil/config.json',
        stateDir: '/var/lib/vigil',
        logDir: '/var/log/vigil',
        socket: defaultSocketPath('linux'),
      };
  }
}

/**
 * The local API address of an agent whose state dir is not the machine-wide one: next to its state, so
 * that agents with different state dirs (tests, a user-mode agent) never fight over one address.
 */
export function stateDirSocket(stateDir: string, platform: Platform = process.platform as Platform): string {
  if (platform === 'win32') {
    const hash = createHash('sha256').update(resolve(stateDir).toLowerCase()).digest('hex').slice(0, 32);
    return `\\\\.\\pipe\\vigil-agent-${hash}`;
  }
  return join(stateDir, 'agent.sock');
}

/**
 * Per-OS locations. Machine-wide ones when the process is privileged, or when a service is installed
 * (its state dir exists): then every command on the device speaks of the device's one agent, and an
 * unprivileged user gets the service's state through its socket rather than an empty state of their
 * own. Otherwise per-user ones, for local-only use (XDG on Linux). On Linux, an explicit XDG_STATE_HOME
 * keeps per-user locations even for root, so a root shell can run an agent of its own in isolation.
 */
export function defaultPaths(
  platform: Platform = process.platform as Platform,
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
  serviceInstalled: (stateDir: string) => boolean = existsSync,
  privileged: boolean = isPrivileged(platform, env),
): VigilPaths {
  const machine = machinePaths(platform, env);
  const isolated = platform === 'linux' && Boolean(env.XDG_STATE_HOME);
  if (!isolated && (privileged || serviceInstalled(machine.stateDir))) return machine;
  const user = (p: Omit<VigilPaths, 'socket'>): VigilPaths => ({ ...p, socket: stateDirSocket(p.stateDir, platform) });
  switch (platform) {
    case 'darwin':
      return user({
        systemConfig: machine.systemConfig,
        userConfig: join(home, 'Library/Application Support/Vigil/config.json'),
        stateDir: join(home, 'Library/Application Support/Vigil/state'),
        logDir: join(home, 'Library/Logs/Vigil'),
      });
    case 'win32': {
      const appData = env.APPDATA ?? join(home, 'AppData', 'Roaming');
      const localAppData = env.LOCALAPPDATA ?? join(home, 'AppData', 'Local');
      return user({
        systemConfig: machine.systemConfig,
        userConfig: join(appData, 'Vigil', 'config.json'),
        stateDir: join(localAppData, 'Vigil', 'state'),
        logDir: join(localAppData, 'Vigil', 'logs'),
      });
    }
    case 'linux': {
      const configHome = env.XDG_CONFIG_HOME || join(home, '.config');
      const stateHome = env.XDG_STATE_HOME || join(home, '.local', 'state');
      return user({
        systemConfig: machine.systemConfig,
        ...(machine.managedDir ? { managedDir: machine.managedDir } : {}),
        userConfig: join(configHome, 'vigil', 'config.json'),
        stateDir: join(stateHome, 'vigil'),
        logDir: join(stateHome, 'vigil', 'logs'),
      });
    }
  }
}

/**
 * The socket an agent with this state dir serves, and the one its clients try: `agent.socket` when set;
 * the machine-wide address for the machine-wide state dir; otherwise one beside the state dir.
 */
export function agentSocket(paths: VigilPaths, stateDir: string, configured: string | undefined, platform: Platform = process.platform as Platform): string {
  if (configured) return configured;
  return resolve(stateDir) === resolve(paths.stateDir) ? paths.socket : stateDirSocket(stateDir, platform);
}
