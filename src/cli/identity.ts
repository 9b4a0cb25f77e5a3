import type { Command } from 'commander';
import { UsageError } from '../config/errors.js';
import type { IdentityManager, IdentityStatus } from '../identity/manager.js';
import type { TokenSource } from '../identity/token.js';
import type { GlobalOptions, Runtime } from '../runtime.js';

// Implementations load when a command runs, not when it is registered: `vigil daemon` shares this
// program and should not keep enrollment code resident.

interface IdentityIO {
  stdout: (s: string) => void;
}

/**
 * Enroll, renew, rekey and unenroll change the identity the service holds, in a state dir only root (or
 * SYSTEM and Administrators) may touch. An unprivileged user is told what to run instead, in one line,
 * rather than shown a permission error from deep inside. Windows has no cheap test for an elevated
 * token, so there the file system's refusal is what answers.
 */
async function stateAccess(cmd: Command): Promise<{ stateDir: string; socket: string; denied: boolean }> {
  const [{ locateFromGlobals }, { isPrivileged, machinePaths }, fs, path] = await Promise.all([
    import('../config/locate.js'),
    import('../platform/paths.js'),
    import('node:fs'),
    import('node:path'),
  ]);
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const where = locateFromGlobals(g);
  if (process.platform === 'win32' || isPrivileged()) return { ...where, denied: false };
  let denied = path.resolve(where.stateDir) === path.resolve(machinePaths(process.platform as 'linux' | 'darwin').stateDir);
  try {
    fs.accessSync(where.stateDir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') denied = true;
  }
  return { ...where, denied };
}

async function requirePrivilege(cmd: Command, command: string): Promise<void> {
  const { stateDir, denied } = await stateAccess(cmd);
  if (denied) {
    throw new Error(`${command} changes this device's identity, which the Vigil service keeps in ${stateDir} (root only); run it as root: sudo vigil ${command} … (same arguments)`);
  }
}

async function managerFor(cmd: Command): Promise<IdentityManager> {
  return (await runtimeAndManager(cmd)).manager;
}

async function runtimeAndManager(cmd: Command): Promise<{ rt: Runtime; manager: IdentityManager }> {
  const [{ loadRuntime }, { identityManagerFor }] = await Promise.all([import('../runtime.js'), import('../identity/for-runtime.js')]);
  const rt = await loadRuntime(cmd.optsWithGlobals<GlobalOptions>(), 'cli');
  return { rt, manager: identityManagerFor(rt) };
}

interface EnrollFlags {
  caUrl?: string;
  fingerprint?: string;
  token?: string;
  controlPlane?: string;
  enrollmentSecret?: string;
  enrollmentSecretFile?: string;
}

async function staticToken(token: string): Promise<TokenSource> {
  const { StaticToken } = await import('../identity/token.js');
  return new StaticToken(token);
}

/**
 * A pasted token wins; otherwise an enrollment secret (flag, flag file, or reporting.enrollmentSecretFile,
 * as MDM deploys it) is traded at the control plane. undefined when neither is available.
 */
async function tokenSourceFor(rt: Runtime, m: IdentityManager, opts: EnrollFlags): Promise<TokenSource | undefined> {
  if (opts.token) return staticToken(opts.token);
  const reporting = rt.loaded.config.reporting;
  const secretFile = opts.enrollmentSecretFile ?? reporting.enrollmentSecretFile;
  const secret = opts.enrollmentSecret ?? (secretFile === undefined ? undefined : await (await import('../identity/enroll-device.js')).readEnrollmentSecret(secretFile));
  const controlPlane = opts.controlPlane ?? reporting.controlPlaneUrl;
  if (secret === undefined && opts.controlPlane === undefined) return undefined;
  if (secret === undefined) throw new UsageError('enroll --control-plane needs --enrollment-secret, --enrollment-secret-file or reporting.enrollmentSecretFile');
  if (controlPlane === undefined) throw new UsageError('an enrollment secret needs --control-plane or reporting.controlPlaneUrl');
  if (!/^https:\/\/[^\s/]+/.test(controlPlane)) throw new UsageError(`--control-plane ${controlPlane}: must be an https:// URL`);
  const { enrollmentTokenSource } = await import('../reporting/setup.js');
  return enrollmentTokenSource(rt, m, controlPlane, secret);
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.round(m / 60);
  return h < 48 ? `${h} h` : `${Math.round(h / 24)} days`;
}

/** The exact command an admin runs to mint a token for this device. */
async function tokenHint(m: IdentityManager, caUrl: string | undefined): Promise<string> {
  const { request, tokenSans } = await m.requestedSubject();
  const sans = tokenSans.map((s) => ` --san ${s}`).join('');
  return `step ca token ${request.commonName}${sans}${caUrl ? ` --ca-url ${caUrl}` : ''}`;
}

export function formatIdentity(s: IdentityStatus): string {
  const rows: [string, string | undefined][] = [
    ['State', s.reason ? `${s.state} (${s.reason})` : s.state],
    ['Fix', s.fix],
    ['Device ID', s.deviceId ? `${s.deviceId} (from ${s.deviceIdSource ?? 'unknown'})` : undefined],
    ['Subject', s.subject],
    ['SANs', [...(s.dnsNames ?? []).map((d) => `DNS:${d}`), ...(s.uris ?? []).map((u) => `URI:${u}`)].join(', ') || undefined],
    ['Serial', s.serial],
    ['Valid', s.notBefore && s.notAfter ? `${s.notBefore} to ${s.notAfter}` : undefined],
    ['Renewal', s.renewAt && s.timeToRenewalMs !== undefined ? `${s.renewAt} (in ${duration(s.timeToRenewalMs)})` : undefined],
    ['Key', s.keyType ? `${s.keyType}, ${s.keyStorage === 'keychain' ? 'encrypted under a data key in the OS keychain' : 'unencrypted 0600 file'}` : `storage: ${s.keyStorage}`],
    ['Key storage', s.keyStorageNote],
    ['Warning', s.keyStorageWarning],
    ['CA', s.caUrl],
    ['Pinned root', s.rootFingerprint],
    ['Cert file', s.paths?.certificate],
    ['Key file', s.paths?.key],
    ['Last error', s.lastError ? `${s.lastError}${s.nextAttemptAt ? `; next attempt ${s.nextAttemptAt}` : ''}` : undefined],
  ];
  return `${rows.flatMap(([k, v]) => (v === undefined ? [] : [`${`${k}:`.padEnd(13)} ${v}`])).join('\n')}\n`;
}

/** `vigil enroll | renew | rekey | identity | unenroll`. IdentityErrors surface as one-line messages. */
export function registerIdentityCommands(program: Command, io: IdentityIO): void {
  program
    .command('enroll')
    .description('get a device certificate from step-ca with a one-time token (flags mirror `step ca bootstrap`)')
    .option('--ca-url <url>', 'step-ca URL (default: identity.caUrl)')
    .option('--fingerprint <sha256>', 'root certificate fingerprint (default: identity.fingerprint)')
    .option('--token <ott>', 'one-time token from `step ca token` or your admin')
    .option('--control-plane <url>', 'control plane that trades an enrollment secret for a token (default: reporting.controlPlaneUrl)')
    .option('--enrollment-secret <secret>', 'enrollment secret from `vigil-control-plane secret create`')
    .option('--enrollment-secret-file <file>', 'file holding the enrollment secret (default: reporting.enrollmentSecretFile)')
    .action(async (opts: EnrollFlags, cmd: Command) => {
      await requirePrivilege(cmd, 'enroll');
      const { rt, manager: m } = await runtimeAndManager(cmd);
      const token = await tokenSourceFor(rt, m, opts);
      if (!token) {
        // The wording is relied on by scripts and tests; --help lists the enrollment-secret route.
        throw new UsageError(`enroll needs --token; an admin can make one with: ${await tokenHint(m, opts.caUrl)}`);
      }
      // Remembered for later commands (never the secret), checked before and saved only after enrollment succeeds.
      const [{ checkEnrollmentValues }, { enrollDevice }] = await Promise.all([import('../config/enrollment-file.js'), import('../identity/enroll-device.js')]);
      const given = { controlPlaneUrl: opts.controlPlane, caUrl: opts.caUrl, fingerprint: opts.fingerprint };
      checkEnrollmentValues(given, { controlPlaneUrl: '--control-plane', caUrl: '--ca-url', fingerprint: '--fingerprint' });
      const status = await enrollDevice({ stateDir: rt.loaded.stateDir, manager: m, token, given, logger: rt.logger });
      io.stdout(`Enrolled.\n${formatIdentity(status)}`);
    });

  program
    .command('renew')
    .description('renew the device certificate over mTLS if it is due')
    .option('--force', 'renew even if not yet due')
    .action(async (opts: { force?: boolean }, cmd: Command) => {
      await requirePrivilege(cmd, 'renew');
      const m = await managerFor(cmd);
      const outcome = await m.renew({ force: opts.force === true });
      if (outcome.action === 'renewed') io.stdout(`Renewed; valid until ${outcome.notAfter.toISOString()}.\n`);
      else if (outcome.action === 'not-due') io.stdout(`Not due until ${outcome.renewAt.toISOString()}; use --force to renew now.\n`);
    });

  program
    .command('rekey')
    .description('replace the device key and certificate (step-ca /1.0/rekey; a token if the CA cannot rekey)')
    .option('--token <ott>', 'one-time token, used only if the CA does not support rekey')
    .action(async (opts: { token?: string }, cmd: Command) => {
      await requirePrivilege(cmd, 'rekey');
      const m = await managerFor(cmd);
      const status = await m.rekey(opts.token ? { token: await staticToken(opts.token) } : {});
      io.stdout(`Rekeyed.\n${formatIdentity(status)}`);
    });

  program
    .command('identity')
    .description('show the device certificate, key storage, pinned root and renewal schedule')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const access = await stateAccess(cmd);
      if (access.denied) {
        // The service's view, without file paths: an unprivileged user may see the identity, not reach the key.
        const { askAgent } = await import('./status.js');
        const state = await askAgent(access.socket);
        if (!state) {
          const { agentNotRunningMessage } = await import('../platform/service-hint.js');
          throw new Error(`${agentNotRunningMessage(access.socket)}; the identity in ${access.stateDir} is readable by root only`);
        }
        io.stdout(opts.json ? `${JSON.stringify(state.identity, null, 2)}\n` : formatIdentity(state.identity));
        return;
      }
      const m = await managerFor(cmd);
      const status = await m.status();
      if (opts.json) {
        io.stdout(`${JSON.stringify(status, null, 2)}\n`);
        return;
      }
      io.stdout(formatIdentity(status));
      if (status.state === 'not-enrolled' || status.state === 'needs-enrollment' || status.state === 'revoked') {
        io.stdout(`\nAn admin makes the token with: ${await tokenHint(m, status.caUrl)}\n`);
      }
    });

  program
    .command('unenroll')
    .description('revoke the device certificate at the CA, then delete the key and certificate')
    .option('--force', 'delete even if the CA cannot be reached to revoke')
    .action(async (opts: { force?: boolean }, cmd: Command) => {
      await requirePrivilege(cmd, 'unenroll');
      const { rt, manager: m } = await runtimeAndManager(cmd);
      // First, while the certificate still exists: the control plane refuses it from now on and lets this
      // device enroll again, instead of taking a later enrollment of the same ID for a takeover.
      const reporting = rt.loaded.config.reporting;
      const current = await m.status();
      if (reporting.controlPlaneUrl !== undefined && current.serial !== undefined && current.state !== 'not-enrolled') {
        const [{ postCertificateGone, certificateGoneAccepted }, { errorDetail }] = await Promise.all([
          import('../reporting/revocation-notice.js'),
          import('../reporting/server-response.js'),
        ]);
        const problem = await postCertificateGone(reporting.controlPlaneUrl, await m.clientTls(), current.serial, 'unenrolled', reporting.requestTimeoutSeconds * 1000).then(
          (res) => (certificateGoneAccepted(res) ? undefined : `HTTP ${res.status} ${errorDetail(res.body.toString('utf8'))}`),
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        );
        if (problem !== undefined) {
          rt.logger.warn(`could not tell the control plane at ${reporting.controlPlaneUrl} that this device unenrolled (${problem}); an administrator may have to allow it to enroll again`);
        }
      }
      const res = await m.unenroll({ force: opts.force === true });
      io.stdout(
        res.revoked
          ? 'Certificate revoked; key and certificate deleted.\n'
          : `Key and certificate deleted; not revoked${res.revokeError ? ` (${res.revokeError})` : ''}.\n`,
      );
    });
}
