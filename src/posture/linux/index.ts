import type { CollectorTable } from '../collector.js';
import { osVersion } from './os-version.js';

export const linuxCollectors: CollectorTable = {
  'os-version': osVersion,
};
