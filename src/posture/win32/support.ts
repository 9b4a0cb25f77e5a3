import { contextFromFacts, type PlatformSupport } from '../platforms.js';
import { win32Checks } from './index.js';
import { collectWin32DeviceFacts } from './device-facts.js';
import { WIN32_POSTURE_PROBE } from './probe.js';

export const win32Support: PlatformSupport = {
  checks: win32Checks,
  deviceFacts: collectWin32DeviceFacts,
  deviceContext: contextFromFacts('win32', collectWin32DeviceFacts),
  minCheckTimeoutMs: WIN32_POSTURE_PROBE.timeoutMs,
};
