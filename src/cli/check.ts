import type { DeviceContext } from '../posture/remediation/types.js';
import type { PostureReport } from '../protocol/report.js';
import type { GlobalOptions } from '../runtime.js';

/**
 * `vigil check` where an agent runs: the agent re-scans (with its privileges, its policy) and this process
 * prints what it found, so that a user's check and the device's posture are the same thing. Undefined when
 * no agent answers, and the caller scans in-process instead (local-only use, `npm start`).
 */
export async function recheckViaAgent(g: GlobalOptions): Promise<{ report: PostureReport; context: DeviceContext } | undefined> {
  const [{ locateFromGlobals }, { withAgent }] = await Promise.all([import('../config/locate.js'), import('./status.js')]);
  return withAgent(locateFromGlobals(g).socket, async (client) => {
    // A scan takes seconds (package managers): a re-check has no call timeout unless one is given.
    const { report } = await client.call('recheck', {});
    const context = await client.call('device-context');
    return { report, context };
  });
}
