import type { DaemonExtension } from './daemon.js';
import { identityDaemonExtension } from '../identity/renewal-job.js';
import { reportingDaemonExtension } from '../reporting/daemon-extension.js';

/** Every entry point (the vigil bin, npm start, the tray) gets these unless a caller (a test) passes its own. */
export const DEFAULT_DAEMON_EXTENSIONS: readonly DaemonExtension[] = [identityDaemonExtension, reportingDaemonExtension];
