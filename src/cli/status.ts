import type { GlobalOptions } from '../runtime.js';
import type { AgentState, IdentitySummary, ReportingSummary } from '../protocol/local-api.js';
import type { LocalApiClient } from '../protocol/local-api-client.js';
import type { PostureReport } from '../protocol/report.js';
import { agentNotRunningMessage } from '../platform/service-hint.js';
import { AGENT_VERSION } from '../version.js';

/*
 * `vigil status`: what the device's agent says, asked over its local API, so that any user sees the
 * service's posture rather than an empty state of their own. Only when no agent answers does it read
 * what the last one left in the state dir, which needs the rights to read it. This module and what it
 * imports stay free of the config schema and the logger: a status query is a whole process, and module
 * loading is most of its cost (bench/cli-cost.ts).
 */

export interface StatusOptions {
  json?: boolean;
  strict?: boolean;
}

const EXIT = { ok: 0, failure: 1, limited: 3, blocked: 4 } as const;

function strictExit(level: string | null | undefined): number {
  return level === 'full' ? EXIT.ok : level === 'limited' ? EXIT.limited : level === 'blocked' ? EXIT.blocked : EXIT.failure;
}

function identityLine(id: Pick<IdentitySummary, 'state' | 'reason' | 'notAfter'>): string {
  const until = id.state === 'valid' && id.notAfter ? ` until ${id.notAfter}` : '';
  return `${id.state}${until}${id.reason === undefined ? '' : ` (${id.reason})`}`;
}

function reportingLine(r: ReportingSummary): string {
  const words: Record<ReportingSummary['state'], string> = {
    off: 'off (no control plane configured)',
    'waiting-for-enrollment': `waits for enrollment (${r.controlPlaneUrl ?? ''})`,
    connecting: `connecting to ${r.controlPlaneUrl ?? ''}`,
    online: `online (${r.controlPlaneUrl ?? ''})`,
    offline: `offline: ${r.controlPlaneUrl ?? ''} cannot be reached`,
    refused: `refused by ${r.controlPlaneUrl ?? ''}`,
  };
  const parts = [words[r.state]];
  if (r.lastDeliveredAt) parts.push(`last report delivered ${r.lastDeliveredAt}`);
  if (r.queued > 0) parts.push(`${r.queued} queued`);
  if (r.dropped > 0) parts.push(`${r.dropped} dropped`);
  return parts.join('; ');
}

export function formatAgentState(state: AgentState, socket: string): string {
  const lines = [
    `Vigil ${AGENT_VERSION}`,
    `Agent:        running in ${state.mode} mode, pid ${state.pid}, since ${state.startedAt} (local API ${socket})`,
    `Policy:       ${state.policy.name} ${state.policy.version} (${state.policy.source})`,
    `Identity:     ${identityLine(state.identity)}`,
    ...(state.identity.fix === undefined ? [] : [`  Fix: ${state.identity.fix}`]),
    ...(state.identity.keyStorageNote === undefined ? [] : [`  Key: ${state.identity.keyStorageNote}`]),
    `Reporting:    ${reportingLine(state.reporting)}`,
    ...(state.reporting.lastError !== undefined && state.reporting.state !== 'online' ? [`  Last error: ${state.reporting.lastError}`] : []),
  ];
  const report = state.posture;
  if (report) {
    lines.push(`Last scan:    ${report.generatedAt}${state.scanning ? ' (scanning now)' : ''}`, `Access level: ${report.accessLevel}`);
    for (const r of report.reasons) lines.push(`  - ${r.message}`);
  } else {
    lines.push(`Last scan:    ${state.scanning ? 'the first scan is running' : 'none yet'}`);
  }
  return `${lines.join('\n')}\n`;
}

export function stateJson(state: AgentState, socket: string, stateDir: string): Record<string, unknown> {
  const report = state.posture;
  return {
    agentVersion: AGENT_VERSION,
    daemon: { running: true, pid: state.pid, mode: state.mode, startedAt: state.startedAt, agentVersion: state.agentVersion, socket },
    identity: state.identity,
    reporting: state.reporting,
    stateDir,
    policy: { name: state.policy.name, version: state.policy.version, source: state.policy.source },
    lastScan: lastScanOf(report),
  };
}

/**
 * Runs `use` on a connection to the agent and closes it; undefined when no agent runs there (any other
 * failure is an error for the user).
 */
export async function withAgent<T>(socket: string, use: (client: LocalApiClient) => Promise<T>): Promise<T | undefined> {
  const { connectLocalApi } = await import('../protocol/local-api-client.js');
  let client;
  try {
    client = await connectLocalApi(socket, { timeoutMs: 5000 });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'not-running') return undefined;
    throw err;
  }
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

export function askAgent(socket: string): Promise<AgentState | undefined> {
  return withAgent(socket, (c) => c.call('state'));
}

function lastScanOf(report: PostureReport | null | undefined): Record<string, unknown> | null {
  return report
    ? { at: report.generatedAt, accessLevel: report.accessLevel, failing: report.reasons.map((r) => ({ id: r.checkId, status: r.status, effect: r.effect })) }
    : null;
}

export async function runStatus(g: GlobalOptions, opts: StatusOptions, stdout: (s: string) => void): Promise<number> {
  const { locateFromGlobals } = await import('../config/locate.js');
  const where = locateFromGlobals(g);
  const state = await askAgent(where.socket);
  if (state) {
    stdout(opts.json ? `${JSON.stringify(stateJson(state, where.socket, where.stateDir), null, 2)}\n` : formatAgentState(state, where.socket));
    return opts.strict ? strictExit(state.accessLevel) : EXIT.ok;
  }
  return lastKnownStatus(g, opts, where.socket, stdout);
}

/** No agent answers: what the last one saved, for whoever may read the state dir. */
async function lastKnownStatus(g: GlobalOptions, opts: StatusOptions, socket: string, stdout: (s: string) => void): Promise<number> {
  const notRunning = agentNotRunningMessage(socket);
  const [{ loadRuntime, readStatus }, { identityManagerFor }] = await Promise.all([import('../runtime.js'), import('../identity/for-runtime.js')]);
  let rt;
  try {
    rt = await loadRuntime(g, 'cli');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw new Error(`${notRunning}; its last state is readable by root only`, { cause: err });
    throw err;
  }
  const stored = await readStatus(rt.statusFile);
  const report = stored?.ok ? stored.report : undefined;
  // A device whose certificate is revoked or broken has no access whatever its posture: status says so.
  const id = await identityManagerFor(rt).status();
  const identity = { state: id.state, ...(id.reason === undefined ? {} : { reason: id.reason }), ...(id.fix === undefined ? {} : { fix: id.fix }) };
  const status = {
    agentVersion: AGENT_VERSION,
    daemon: { running: false, socket, problem: notRunning },
    identity,
    stateDir: rt.loaded.stateDir,
    policy: { name: rt.policy.name, version: rt.policy.version, source: rt.policySource },
    lastScan: lastScanOf(report),
    ...(stored && !stored.ok ? { problem: stored.problem } : {}),
  };
  if (opts.json) stdout(`${JSON.stringify(status, null, 2)}\n`);
  else {
    const lines = [
      `Vigil ${AGENT_VERSION}`,
      `Agent:        not running: ${notRunning.replace(/^the Vigil agent is not running /, '')}`,
      `Policy:       ${rt.policy.name} ${rt.policy.version} (${rt.policySource})`,
      `Identity:     ${identity.state}${identity.reason === undefined ? '' : ` (${identity.reason})`}`,
      ...(identity.fix === undefined ? [] : [`  Fix: ${identity.fix}`]),
      `State dir:    ${rt.loaded.stateDir}`,
    ];
    if (report) {
      lines.push(`Last scan:    ${report.generatedAt} (saved by the last agent)`, `Access level: ${report.accessLevel}`);
      for (const r of report.reasons) lines.push(`  - ${r.message}`);
    } else {
      lines.push(`Last scan:    ${stored && !stored.ok ? stored.problem : 'none yet (run `vigil check`)'}`);
    }
    stdout(`${lines.join('\n')}\n`);
  }
  return opts.strict && report ? strictExit(report.accessLevel) : opts.strict ? EXIT.failure : EXIT.ok;
}
