import type { Agent } from './agent.js';
import { identitySummary, type StatusBoard } from './status-board.js';
import type { LocalApiBackend } from './local-api-server.js';
import type { IdentityManager } from '../identity/manager.js';
import type { AgentState } from '../protocol/local-api.js';
import { PUSHED_POLICY_SOURCE } from '../reporting/pushed-policy.js';
import type { Runtime } from '../runtime.js';
import { AGENT_VERSION } from '../version.js';

/**
 * The daemon as its clients see it. State is computed when asked (the server coalesces pushes), from the
 * same agent, identity manager and reporter the daemon runs: clients never hold a second copy of anything.
 */
export function daemonApiBackend(opts: { runtime: Runtime; agent: Agent; manager: IdentityManager; board: StatusBoard; startedAt: Date }): LocalApiBackend {
  const { runtime, agent, manager, board } = opts;
  const startedAt = opts.startedAt.toISOString();
  // Policies change only by a push from the control plane once the daemon runs.
  let policySource = runtime.policySource;
  agent.on('policy-changed', () => {
    policySource = PUSHED_POLICY_SOURCE;
  });
  return {
    mode: runtime.loaded.mode,
    async state(): Promise<AgentState> {
      const identity = await manager.status();
      const report = agent.report ?? null;
      const policy = agent.policy;
      return {
        mode: runtime.loaded.mode,
        agentVersion: AGENT_VERSION,
        pid: process.pid,
        startedAt,
        platform: runtime.platform,
        scanning: agent.scanning,
        posture: report,
        accessLevel: report?.accessLevel ?? null,
        identity: identitySummary(identity, runtime.loaded.config.identity.caUrl),
        reporting: board.reporting(),
        policy: { name: policy.name, version: policy.version, source: policySource, document: policy },
      };
    },
    recheck: async (checks) => (await agent.scan(checks)).report,
    deviceContext: () => agent.deviceContext(),
    onChange(listener) {
      const events = ['scan-started', 'scanned', 'policy-changed'] as const;
      for (const e of events) agent.on(e, listener);
      board.on('change', listener);
      return () => {
        for (const e of events) agent.off(e, listener);
        board.off('change', listener);
      };
    },
  };
}
