import { contextFromFacts, type PlatformSupport } from '../platforms.js';
import { darwinChecks } from './index.js';
import { collectDarwinDeviceFacts } from './device-facts.js';
import { DARWIN_POSTURE_PROBE } from './probe.js';

export const darwinSupport: PlatformSupport = {
  checks: darwinChecks,
  deviceFacts: collectDarwinDeviceFacts,
  deviceContext: contextFromFacts('darwin', collectDarwinDeviceFacts),
  minCheckTimeoutMs: DARWIN_POSTURE_PROBE.timeoutMs,
};
