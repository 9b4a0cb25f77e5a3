import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Platform } from '../posture/types.js';

export interface VigilPaths {
  /** Machine-wide config, written by an admin or installer. */
  systemConfig: string;
  /** Directory of managed (MDM) JSON files that override every other layer (Linux only; see managed.ts). */
  managedDir?: string;
  userConfig: string;
  stateDir: string;
  logDir: string;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Per-OS locations, following each OS's conventions (XDG on Linux). */
export function defaultPaths(
  platform: Platform = process.platform as Platform,
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): VigilPaths {
  switch (platform) {
    case 'darwin':
      return {
        systemConfig: '/Library/Application Support/Vigil/config.json',
        userConfig: join(home, 'Library/Application Support/Vigil/config.json'),
        stateDir: join(home, 'Library/Application Support/Vigil/state'),
        logDir: join(home, 'Library/Logs/Vigil'),
      };
    case 'win32': {
      const programData = env.ProgramData ?? 'C:\\ProgramData';
      const appData = env.APPDATA ?? join(home, 'AppData', 'Roaming');
      const localAppData = env.LOCALAPPDATA ?? join(home, 'AppData', 'Local');
      return {
        systemConfig: join(programData, 'Vigil', 'config.json'),
        userConfig: join(appData, 'Vigil', 'config.json'),
        stateDir: join(localAppData, 'Vigil', 'state'),
        logDir: join(localAppData, 'Vigil', 'logs'),
      };
    }
    case 'linux': {
      // A root daemon (a server's systemd unit) keeps its state where an admin looks for it.
      if (isRoot() && !env.XDG_STATE_HOME) {
        return {
          systemConfig: '/etc/vigil/config.json',
          managedDir: '/etc/vigil/managed.d',
          userConfig: '/etc/vigil/config.json',
          stateDir: '/var/lib/vigil',
          logDir: '/var/log/vigil',
        };
      }
      const configHome = env.XDG_CONFIG_HOME || join(home, '.config');
      const stateHome = env.XDG_STATE_HOME || join(home, '.local', 'state');
      return {
        systemConfig: '/etc/vigil/config.json',
        managedDir: '/etc/vigil/managed.d',
        userConfig: join(configHome, 'vigil', 'config.json'),
        stateDir: join(stateHome, 'vigil'),
        logDir: join(stateHome, 'vigil', 'logs'),
      };
    }
  }
}
