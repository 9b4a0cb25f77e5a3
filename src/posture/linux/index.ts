import type { PlatformChecks } from '../collector.js';
import { diskEncryption } from './disk-encryption.js';
import { firewall } from './firewall.js';
import { osVersion } from './os-version.js';
import { screenLock } from './screen-lock.js';
import { secureBoot } from './secure-boot.js';

export const linuxChecks: PlatformChecks = {
  'os-version': osVersion,
  'disk-encryption': diskEncryption,
  firewall,
  'screen-lock': screenLock,
  'secure-boot': secureBoot,
};
