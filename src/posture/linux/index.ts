import type { PlatformChecks } from '../collector.js';
import { autoUpdates } from './auto-updates.js';
import { edrRunning } from './edr-running.js';
import { guestAccount } from './guest-account.js';
import { notRooted } from './not-rooted.js';
import { osPatched } from './os-patched.js';
import { osVersion } from './os-version.js';
import { rootEmptyPassword } from './root-empty-password.js';
import { sshServer } from './ssh-server.js';

export const linuxChecks: PlatformChecks = {
  'os-version': osVersion,
  'os-patched': osPatched,
  'auto-updates': autoUpdates,
  'edr-running': edrRunning,
  'ssh-server': sshServer,
  'root-empty-password': rootEmptyPassword,
  'guest-account': guestAccount,
  'not-rooted': notRooted,
};
