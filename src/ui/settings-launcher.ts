import { spawn } from 'node:child_process';
import type { DeepLinkTarget } from '../posture/remediation/deeplinks.js';
import type { OpenSettingsResult } from './ipc-channels.js';

/**
 * Opens a settings page the walkthrough asked for. The target always comes from the compiled-in
 * allow-list (DEEP_LINKS) through the walkthrough session, never from the renderer or a server: URLs go
 * to the OS's URL handler (`openExternal`, Electron's shell in the tray), commands run with a fixed argv
 * and no shell, so nothing from the page reaches a command line.
 */
export function launchSettings(target: DeepLinkTarget, openExternal: (url: string) => Promise<void>): Promise<OpenSettingsResult> {
  if (target.kind === 'url') {
    return openExternal(target.url).then(
      () => ({ ok: true }),
      (err: unknown) => ({ ok: false, message: `Could not open the settings page: ${(err as Error).message}` }),
    );
  }
  const [program, ...rest] = target.argv;
  if (program === undefined) return Promise.resolve({ ok: false, message: 'No settings page for this step.' });
  return new Promise((resolve) => {
    const child = spawn(program, rest, { detached: true, stdio: 'ignore', shell: false });
    child.once('spawn', () => {
      child.unref();
      resolve({ ok: true });
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      resolve({
        ok: false,
        message: err.code === 'ENOENT' ? `${program} is not installed on this device. Follow the steps above instead.` : `Could not start ${program}: ${err.message}`,
      });
    });
  });
}
