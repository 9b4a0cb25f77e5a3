import type { PlatformChecks } from '../collector.js';
import { autoUpdates } from './auto-updates.js';
import { diskEncryption } from './disk-encryption.js';
import { edrRunning } from './edr-running.js';
import { firewall } from './firewall.js';
import { gatekeeper } from './gatekeeper.js';
import { guestAccount } from './guest-account.js';
import { mdmEnrolled } from './mdm-enrolled.js';
import { notRooted } from './not-rooted.js';
import { osPatched } from './os-patched.js';
import { osVersion } from './os-version.js';
import { screenLock } from './screen-lock.js';
import { sshServer } from './ssh-server.js';
import { xprotect } from './xprotect.js';

export const darwinChecks: PlatformChecks = {
  'os-version': osVersion,
  'os-patched': osPatched,
  'disk-encryption': diskEncryption,
  'not-rooted': notRooted,
  'edr-running': edrRunning,
  firewall,
  'screen-lock': screenLock,
  'auto-updates': autoUpdates,
  'ssh-server': sshServer,
  'guest-account': guestAccount,
  gatekeeper,
  'mdm-enrolled': mdmEnrolled,
  xprotect,
};
