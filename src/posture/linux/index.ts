import type { PlatformChecks } from '../collector.js';
import { autoUpdates } from './auto-updates.js';
import { diskEncryption } from './disk-encryption.js';
import { edrRunning } from './edr-running.js';
import { firewall } from './firewall.js';
import { guestAccount } from './guest-account.js';
import { notRooted } from './not-rooted.js';
import { osPatched } from './os-patched.js';
import { osVersion } from './os-version.js';
import { rootEmptyPassword } from './root-empty-password.js';
import { screenLock } from './screen-lock.js';
import { secureBoot } from './secure-boot.js';
import { sshServer } from './ssh-server.js';

export const linuxChecks: PlatformChecks = {
  'os-version': osVersion,
  'os-patched': osPatched,
  'disk-encryption': diskEncryption,
  'not-rooted': notRooted,
  'edr-running': edrRunning,
  firewall,
  'screen-lock': screenLock,
  'auto-updates': autoUpdates,
  'secure-boot': secureBoot,
  'ssh-server': sshServer,
  'root-empty-password': rootEmptyPassword,
  'guest-account': guestAccount,
};
