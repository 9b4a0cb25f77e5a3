import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logging/logger.js';
import { FileCertificateSource, type CertificateSource } from './cert-source.js';
import { parseListen, type ServeCommandConfig } from './config.js';
import { localCluster, type Cluster } from './cluster.js';
import { buildApp, tlsOptions, type ControlPlaneApp } from './http.js';
import { loadProvisionerKey, rootFingerprint, type ProvisionerKey } from './ott.js';
import { pgCluster, redactDatabaseUrl } from './pg-cluster.js';
import { PgStorage } from './pg-storage.js';
import { ConsoleService } from './console.js';
import { ControlPlaneService } from './service.js';
import { SqliteStorage } from './sqlite-storage.js';
import { StepCaCertificateSource } from './stepca-cert-source.js';
import type { Storage } from './storage.js';

export interface RunningControlPlane {
  /** https://host:port, with the real port when 0 was asked for. */
  url: string;
  port: number;
  app: ControlPlaneApp;
  service: ControlPlaneService;
  console: ConsoleService;
  close(): Promise<void>;
}

export interface StartOptions {
  logger: Logger;
  /** Defaults to the configured --tls-cert/--tls-key files, else a certificate from step-ca. */
  certificateSource?: CertificateSource;
  storage?: Storage;
  ssePingMs?: number;
  /** False: no periodic stale sweep or pruning; the caller runs service.sweep() and prune() (the scale benchmark). */
  housekeeping?: boolean;
  /** Instead of step-ca's revoke API, for tests of the server alone. */
  revokeAtCa?: (serialHex: string, reason: string) => Promise<'revoked' | 'already-revoked'>;
  /** The admin console's built files; defaults to dist/console beside the compiled server. */
  consoleDir?: string;
}

/**
 * dist/console, where the console build writes: this file runs from dist/src/control-plane when built, and
 * from src/control-plane under the tests, whose checkout has dist/ at its root.
 */
function defaultConsoleDir(): string {
  const top = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return basename(top) === 'dist' ? join(top, 'console') : join(top, 'dist', 'console');
}

/** Configured files if given; otherwise a certificate from the same step-ca, for the listen host. */
function serverCertificateSource(config: ServeCommandConfig, host: string, caRootPem: string, provisionerKey: ProvisionerKey, logger: Logger): CertificateSource {
  if (config.tlsCert !== undefined && config.tlsKey !== undefined) return new FileCertificateSource(config.tlsCert, config.tlsKey);
  const serverName = config.serverName ?? host;
  if (serverName === '0.0.0.0' || serverName === '::') {
    throw new Error(`listening on ${host}: give --server-name (the name agents connect to) or --tls-cert and --tls-key`);
  }
  return new StepCaCertificateSource({
    caUrl: config.caUrl,
    caRootPem,
    rootFingerprint: rootFingerprint(caRootPem),
    provisioner: config.provisioner,
    provisionerKey,
    serverName,
    logger,
  });
}

/**
 * PostgreSQL when `database` is configured (several instances may share it), else SQLite in the data dir. A
 * storage handed in by a test runs as one instance.
 */
async function openBackend(config: ServeCommandConfig, opts: StartOptions): Promise<{ storage: Storage; cluster: Cluster }> {
  if (opts.storage) return { storage: opts.storage, cluster: localCluster() };
  if (config.database !== undefined) {
    const url = config.database;
    const storage = await PgStorage.open(url, {
      // The pool replaces the connection; the next query that fails is what a caller sees.
      onIdleError: (err) => opts.logger.warn('an idle PostgreSQL connection failed', { component: 'control-plane', err }),
    });
    opts.logger.info('storage: PostgreSQL', { component: 'control-plane', database: redactDatabaseUrl(url) });
    return { storage, cluster: pgCluster(storage, url, opts.logger) };
  }
  if (config.dataDir === undefined) throw new Error('dataDir: required unless database is set: SQLite keeps the data there');
  const storage = new SqliteStorage(config.dataDir, {
    backgroundCheckpoints: true,
    onCheckpointerError: (err: unknown) => {
      opts.logger.warn('the WAL checkpoint worker failed; SQLite checkpoints inside commits again', { component: 'control-plane', err });
    },
  });
  return { storage, cluster: localCluster() };
}

/** Loads keys and files, opens storage, listens, and runs the stale sweeper and history pruning. */
export async function startControlPlane(config: ServeCommandConfig, opts: StartOptions): Promise<RunningControlPlane> {
  const listen = parseListen(config.listen);
  if (!listen) throw new Error(`--listen ${config.listen}: expected host:port`);
  const [caRootPem, adminTokenRaw, provisionerKey] = await Promise.all([
    readFile(config.caRoot, 'utf8'),
    readFile(config.adminTokenFile, 'utf8'),
    loadProvisionerKey(config.provisionerKey),
  ]);
  const adminToken = adminTokenRaw.trim();
  if (adminToken.length < 16) throw new Error(`${config.adminTokenFile}: the admin token must be at least 16 characters`);
  const certificateSource = opts.certificateSource ?? serverCertificateSource(config, listen.host, caRootPem, provisionerKey, opts.logger);
  const credentials = await certificateSource.load();
  const { storage, cluster } = await openBackend(config, opts);
  const hub = cluster.hub;
  const service = await ControlPlaneService.create({
    storage,
    hub,
    logger: opts.logger,
    caUrl: config.caUrl,
    provisioner: config.provisioner,
    provisionerKey,
    caRootPem,
    rootFingerprint: rootFingerprint(caRootPem),
    reportIntervalSeconds: config.reportIntervalSeconds,
    maxReportAgeSeconds: config.maxReportAgeSeconds,
    history: config.history,
    eventRetentionCount: config.eventRetentionCount,
    eventRetentionDays: config.eventRetentionDays,
    enrollPerSecret: cluster.rateLimit('enroll-secret', config.enrollPerSecretPerMinute, config.enrollPerSecretPerMinute),
    enrollPerDevice: cluster.rateLimit('enroll-device', config.enrollPerDevicePerMinute, config.enrollPerDevicePerMinute),
    ...(config.deviceDnsSuffix === undefined ? {} : { deviceDnsSuffix: config.deviceDnsSuffix }),
    ...(config.deviceCertDuration === undefined ? {} : { deviceCertDuration: config.deviceCertDuration }),
    ...(opts.revokeAtCa === undefined ? {} : { revokeAtCa: opts.revokeAtCa }),
  });
  const consoleService = new ConsoleService({
    storage,
    currentPolicy: () => service.currentPolicy(),
    logger: opts.logger,
    idleTimeoutMinutes: config.console.idleTimeoutMinutes,
    absoluteLifetimeHours: config.console.absoluteLifetimeHours,
    maxReportAgeSeconds: config.maxReportAgeSeconds,
    signinPerName: cluster.rateLimit('signin-name', config.console.signinFailuresPerMinutePerName, config.console.signinFailuresPerMinutePerName),
    signinPerIp: cluster.rateLimit('signin-address', config.console.signinFailuresPerMinutePerIp, config.console.signinFailuresPerMinutePerIp),
  });
  await hub.start(service);
  const app = buildApp({
    service,
    hub,
    logger: opts.logger,
    adminToken,
    caRootPem,
    credentials,
    bodyLimitBytes: config.bodyLimitBytes,
    enrollLimiter: cluster.rateLimit('enroll-address', config.enrollBurst, config.enrollPerMinute),
    adminFailureLimiter: cluster.rateLimit('admin-token-address', config.adminAuthFailuresPerMinute, config.adminAuthFailuresPerMinute),
    console: consoleService,
    consoleDir: opts.consoleDir ?? defaultConsoleDir(),
    trustProxy: config.trustProxy,
    ...(opts.ssePingMs === undefined ? {} : { ssePingMs: opts.ssePingMs }),
  });
  await app.listen({ host: listen.host, port: listen.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : listen.port;

  const unwatch = certificateSource.onChange(() => {
    certificateSource
      .load()
      .then((c) => {
        app.server.setSecureContext(tlsOptions(c, caRootPem));
        opts.logger.info('server certificate reloaded', { component: 'control-plane' });
      })
      .catch((err: unknown) => opts.logger.error('server certificate reload failed; keeping the old one', { component: 'control-plane', err }));
  });

  // Staleness is a fact about time passing, so something must look even when no request comes in.
  const sweepMs = Math.max(250, Math.min(30_000, (config.maxReportAgeSeconds * 1000) / 4));
  // With several instances each job runs on one of them at a time (an advisory lock); the others skip that turn.
  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping || opts.housekeeping === false) return;
    sweeping = true;
    cluster
      .exclusive('sweep', async () => {
        await service.sweep();
      })
      .catch((err: unknown) => opts.logger.error('stale sweep failed', { component: 'control-plane', err }))
      .finally(() => (sweeping = false));
  }, sweepMs);
  // Hourly, and once now so that a fresh server's overview has a first point: the fleet's counts for the
  // compliance chart, and expired console sessions pruned.
  const hourly = async (): Promise<void> => {
    await consoleService.snapshot().catch((err: unknown) => opts.logger.error('fleet snapshot failed', { component: 'control-plane', err }));
    await consoleService.pruneSessions().catch((err: unknown) => opts.logger.error('session prune failed', { component: 'control-plane', err }));
  };
  await hourly();
  let pruning = false;
  const pruner = setInterval(() => {
    void hourly();
    // A prune of a big fleet runs in batches for a while; the next hour's waits for it to end.
    if (pruning || opts.housekeeping === false) return;
    pruning = true;
    cluster
      .exclusive('prune', async () => {
        await service.prune();
        await cluster.prune(Date.now());
      })
      .catch((err: unknown) => opts.logger.error('history prune failed', { component: 'control-plane', err }))
      .finally(() => (pruning = false));
  }, 3_600_000);
  sweeper.unref();
  pruner.unref();

  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  opts.logger.info('control plane listening', { component: 'control-plane', url: `https://${host}:${port}` });
  return {
    url: `https://${host}:${port}`,
    port,
    app,
    service,
    console: consoleService,
    async close() {
      clearInterval(sweeper);
      clearInterval(pruner);
      unwatch();
      certificateSource.close();
      await app.close();
      await cluster.close();
      await storage.close();
    },
  };
}
