import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { runCli } from './cli/program.js';

/**
 * `npm start`: the tray where Electron can run, otherwise the headless agent with a one-line reason.
 * Plain Node's require of the electron package returns the binary's path, or throws when it was never downloaded.
 */
function electronBinary(): { path: string } | { reason: string } {
  const main = fileURLToPath(new URL('../electron/main.js', import.meta.url));
  if (!existsSync(main)) return { reason: 'the tray app is not built (dist/electron/main.js missing)' };
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    return { reason: 'no graphical session (DISPLAY and WAYLAND_DISPLAY are unset)' };
  }
  try {
    const path: unknown = createRequire(import.meta.url)('electron');
    if (typeof path === 'string' && existsSync(path)) return { path };
    return { reason: 'the electron package has no binary' };
  } catch {
    return { reason: "Electron's binary is not installed (run `node node_modules/electron/install.js` where the network allows)" };
  }
}

const args = process.argv.slice(2);
const electron = electronBinary();
if ('path' in electron) {
  const child = spawn(electron.path, [fileURLToPath(new URL('../electron/main.js', import.meta.url)), ...args], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  process.stderr.write(`vigil: tray unavailable: ${electron.reason}; running the headless agent instead.\n`);
  const code = await runCli(['check', ...args]);
  process.exitCode = code === 0 ? await runCli(['daemon', ...args]) : code;
}
