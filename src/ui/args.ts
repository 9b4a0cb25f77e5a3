import type { GlobalOptions } from '../runtime.js';

export interface TrayArgs {
  /** Started by login or MDM: stay in the tray and open no window, whatever else happens. */
  hidden: boolean;
  /** `npm run smoke:electron`: create the tray, open and close the walkthrough, report, quit. */
  smoke?: { measure: boolean };
  global: GlobalOptions;
}

const VALUE_FLAGS = { '--config': 'config', '--state-dir': 'stateDir', '--socket': 'socket', '--log-level': 'logLevel' } as const;

/**
 * Reads our flags from the tray's command line. Electron and Chromium add switches of their own, so
 * anything unknown is ignored rather than refused.
 */
export function parseTrayArgs(argv: readonly string[]): TrayArgs {
  const out: TrayArgs = { hidden: false, global: {} };
  let measure = false;
  let smoke = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (name === '--hidden') out.hidden = true;
    else if (name === '--smoke') smoke = true;
    else if (name === '--measure') measure = true;
    else if (Object.hasOwn(VALUE_FLAGS, name)) {
      const key = VALUE_FLAGS[name as keyof typeof VALUE_FLAGS];
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value !== undefined && value !== '') out.global[key] = value;
    }
  }
  if (smoke) out.smoke = { measure };
  return out;
}
