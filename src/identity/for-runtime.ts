import type { Logger } from '../logging/logger.js';
import type { Runtime } from '../runtime.js';
import { IdentityManager, type IdentityManagerOptions } from './manager.js';

/** An identity manager for this runtime's state dir and config, knowing whether it serves the privileged service. */
export function identityManagerFor(runtime: Runtime, extra: Partial<IdentityManagerOptions> & { logger?: Logger } = {}): IdentityManager {
  return new IdentityManager({
    stateDir: runtime.loaded.stateDir,
    config: runtime.loaded.config.identity,
    logger: runtime.logger,
    service: runtime.loaded.mode === 'service',
    ...extra,
  });
}
