import { homedir } from 'node:os';
import { join } from 'node:path';

export const AUTOSTART_FILE_NAME = 'vigil.desktop';

/** Where XDG autostart looks for per-user entries ($XDG_CONFIG_HOME/autostart). */
export function autostartPath(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'autostart', AUTOSTART_FILE_NAME);
}

/**
 * Quotes one Exec argument as the Desktop Entry spec requires: arguments with reserved characters go in
 * double quotes with `"`, `` ` ``, `$` and `\` escaped, and a literal `%` is doubled (field codes).
 */
export function quoteExecArg(arg: string): string {
  const percent = arg.replace(/%/g, '%%');
  if (percent !== '' && !/[\s"'\\><~|&;$*?#()`]/.test(percent)) return percent;
  return `"${percent.replace(/(["`$\\])/g, '\\$1')}"`;
}

/** Values of string keys must not break the line structure. */
function escapeValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}

export interface AutostartEntry {
  /** The program and its arguments, e.g. [AppImage path, '--hidden']. */
  exec: readonly string[];
  name?: string;
  comment?: string;
  icon?: string;
}

export function desktopEntry(entry: AutostartEntry): string {
  if (entry.exec.length === 0) throw new Error('autostart entry needs a program to run');
  const lines = [
    '[Desktop Entry]',
    'Type=Application',
    'Version=1.0',
    `Name=${escapeValue(entry.name ?? 'Vigil')}`,
    `Comment=${escapeValue(entry.comment ?? 'Device security status')}`,
    `Exec=${escapeValue(entry.exec.map(quoteExecArg).join(' '))}`,
    ...(entry.icon ? [`Icon=${escapeValue(entry.icon)}`] : []),
    'Terminal=false',
    'Categories=Utility;',
    'X-GNOME-Autostart-enabled=true',
    // A tray icon before the panel exists is lost on some desktops; GNOME honours this delay.
    'X-GNOME-Autostart-Delay=5',
  ];
  return `${lines.join('\n')}\n`;
}
