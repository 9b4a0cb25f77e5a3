import type { DeviceContext } from '../posture/remediation/types.js';
import type { PostureReport } from '../protocol/report.js';
import type { GlobalOptions } from '../runtime.js';

/**
 * `vigil check` where an agent runs: the agent re-scans (with its privileges, its policy) and this process
 * prints what it found, so that a user's check and the device's posture are the same thing. Undefined when
 * no agent answers, and the caller scans in-process instead (local-only use, `npm start`).
 */
export async function recheckViaAgent(g: GlobalOptions): Promise<{ report: PostureReport; context: DeviceContext } | undefined> {
  const [{ locateAgent }, { connectLocalApi }] = await Promise.all([import('../config/locate.js'), import('../protocol/local-api-client.js')]);
  const where = locateAgent({ ...(g.config === undefined ? {} : { configFile: g.config }), flags: { stateDir: g.stateDir, socket: g.socket } });
  let client;
  try {
    client = await connectLocalApi(where.socket, { timeoutMs: 5000 });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'not-running') return undefined;
    throw err;
  }
  try {
    // A scan takes seconds (package managers); the default call timeout is for quick answers.
    const { report } = await client.call('recheck', {});
    const context = await client.call('device-context');
    return { report, context };
  } finally {
    client.close();
  }
}
