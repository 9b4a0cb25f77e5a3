import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Agent } from '../agent/agent.js';
import type { IdentityManager } from '../identity/manager.js';
import type { Logger } from '../logging/logger.js';
import { parsePolicy } from '../policy/load.js';
import type { Policy } from '../policy/schema.js';
import { FactStore } from '../posture/facts.js';
import { run } from '../posture/exec.js';
import type { Runtime } from '../runtime.js';
import { EnrollmentSecretToken } from './enrollment-token.js';
import { Outbox } from './outbox.js';
import { PUSHED_POLICY_SOURCE, savePushedPolicy } from './pushed-policy.js';
import { Reporter, type ReporterOptions } from './reporter.js';

/**
 * Validates a pushed policy as strictly as a policy file (unknown check IDs too), keeps it in the state
 * dir, and only then applies it: a policy that cannot be saved would silently revert at the next restart.
 */
export async function applyPushedPolicy(runtime: Runtime, agent: Agent, policy: Policy): Promise<void> {
  const checked = parsePolicy(PUSHED_POLICY_SOURCE, policy);
  await savePushedPolicy(runtime.loaded.stateDir, checked);
  agent.setPolicy(checked);
}

/** A reporter wired to this runtime's config, outbox and device identity. */
export async function createReporter(
  runtime: Runtime,
  agent: Agent,
  manager: IdentityManager,
  baseUrl: string,
  extra: Partial<ReporterOptions> = {},
): Promise<Reporter> {
  const cfg = runtime.loaded.config.reporting;
  const logger: Logger = runtime.logger;
  const outbox = await Outbox.open(join(runtime.loaded.stateDir, 'outbox'), { maxEntries: cfg.outbox.maxEntries, maxBytes: cfg.outbox.maxBytes, logger });
  return new Reporter({
    baseUrl,
    outbox,
    identity: { current: () => manager.clientTls() },
    logger,
    scan: async () => (await agent.scan()).report,
    policyVersion: () => agent.policy.version,
    applyPolicy: (policy) => applyPushedPolicy(runtime, agent, policy),
    intervalSeconds: cfg.intervalSeconds,
    debounceMs: cfg.debounceMs,
    requestTimeoutMs: cfg.requestTimeoutSeconds * 1000,
    ...extra,
  });
}

/** Enrollment through the control plane: the secret is traded for a step-ca token, verified against the pinned root. */
export function enrollmentTokenSource(runtime: Runtime, manager: IdentityManager, controlPlaneUrl: string, secret: string): EnrollmentSecretToken {
  return new EnrollmentSecretToken({
    controlPlaneUrl,
    secret,
    timeoutMs: runtime.loaded.config.reporting.requestTimeoutSeconds * 1000,
    clientTls: () => manager.clientTls(),
    onRateLimited: (seconds, message) => {
      runtime.logger.warn(`${message}; retrying in ${seconds} s`);
    },
    facts: () =>
      runtime.support.deviceFacts({
        facts: new FactStore(0),
        readFile: (p: string) => readFile(p, 'utf8'),
        run,
        env: process.env,
      }),
  });
}
