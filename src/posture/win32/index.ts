import type { PlatformChecks } from '../collector.js';
import { autoUpdates } from './auto-updates.js';
import { diskEncryption } from './disk-encryption.js';
import { edrRunning } from './edr-running.js';
import { firewall } from './firewall.js';
import { guestAccount } from './guest-account.js';
import { mdmEnrolled } from './mdm-enrolled.js';
import { notRooted } from './not-rooted.js';
import { osPatched } from './os-patched.js';
import { osVersion } from './os-version.js';
import { screenLock } from './screen-lock.js';
import { secureBoot } from './secure-boot.js';
import { tpm } from './tpm.js';
import { uac } from './uac.js';

export const win32Checks: PlatformChecks = {
  'os-version': osVersion,
  'os-patched': osPatched,
  'disk-encryption': diskEncryption,
  'not-rooted': notRooted,
  'edr-running': edrRunning,
  firewall,
  'screen-lock': screenLock,
  'auto-updates': autoUpdates,
  'secure-boot': secureBoot,
  'guest-account': guestAccount,
  'mdm-enrolled': mdmEnrolled,
  uac,
  tpm,
};
