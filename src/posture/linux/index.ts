import type { PlatformChecks } from '../collector.js';
import { osVersion } from './os-version.js';

export const linuxChecks: PlatformChecks = {
  'os-version': osVersion,
};
