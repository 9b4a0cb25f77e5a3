import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/** host:port with an IPv6 host in brackets. */
export function parseListen(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  return host && Number.isInteger(port) && port >= 0 && port < 65_536 ? { host, port } : null;
}

const listenSchema = z.string().refine((s) => parseListen(s) !== null, 'host:port, e.g. 127.0.0.1:8443');

/** Keys match the CLI flags in camelCase, so a config file and flags mean the same thing. */
const serveKeys = {
  listen: listenSchema.default('127.0.0.1:8443'),
  /** Where SQLite keeps the database: required unless `database` (PostgreSQL) is set, when nothing is kept on disk. */
  dataDir: z.string().min(1).optional(),
  /**
   * A PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=verify-full): storage goes there instead of
   * SQLite in dataDir, and several instances may share it. Its password is never logged.
   */
  database: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'a postgres:// URL, e.g. postgres://vigil@db.example.com:5432/vigil')
    .optional(),
  caUrl: z.url(),
  caRoot: z.string().min(1).describe('step-ca root certificate (PEM): the only trust anchor for client certificates'),
  provisioner: z.string().min(1).describe('Name of the JWK provisioner in step-ca'),
  provisionerKey: z.string().min(1).describe('The provisioner private key: PEM or decrypted JWK JSON'),
  adminTokenFile: z.string().min(1),
  tlsCert: z.string().min(1).describe('Server certificate chain (PEM)'),
  tlsKey: z.string().min(1),
  reportIntervalSeconds: z.number().int().min(10).max(86_400).default(300),
  /** A device silent for longer is `stale`: non-compliant and blocked until it reports again. */
  maxReportAgeSeconds: z.number().int().min(1).max(30 * 86_400).default(900),
  /**
   * Report history kept per device: the newest `maxReports`, none older than `maxAgeDays`, and no more than
   * `maxBytesPerDevice` of stored (as received, usually gzip) bodies. Each device keeps its latest report
   * whatever these say. Pruned hourly, in batches, off the request path.
   */
  history: z
    .strictObject({
      maxReports: z.number().int().min(1).max(1_000_000).default(1000),
      maxAgeDays: z.number().int().min(1).max(3650).optional(),
      maxBytesPerDevice: z.number().int().min(4096).max(1024 * 1024 * 1024).optional(),
    })
    .prefault({}),
  /** Access-level events kept for consumers that resume with Last-Event-ID; older ones get a reset event. */
  eventRetentionCount: z.number().int().min(100).max(10_000_000).default(100_000),
  eventRetentionDays: z.number().int().min(1).max(365).default(7),
  /** Failed admin-token attempts per client address: a burst, then this many per minute. */
  adminAuthFailuresPerMinute: z.number().int().min(1).max(10_000).default(10),
  bodyLimitBytes: z.number().int().min(16_384).max(16 * 1024 * 1024).default(512 * 1024),
  /**
   * The domain device DNS names must be under (`<id>.<deviceDnsSuffix>`, e.g. devices.example.com). Without it,
   * a device may ask for any `<id>.<domain>`: names under its own ID only.
   */
  /**
   * How long device certificates last, passed to step-ca by the agent (`notAfter` of its sign request), within
   * the provisioner's min and max. A Go duration of hours, minutes and seconds ("720h", "1h30m"); without it,
   * the provisioner's default. Renewals keep the duration.
   */
  deviceCertDuration: z
    .string()
    .regex(/^(?=\d)(\d+h)?(\d+m)?(\d+s)?$/, 'a duration such as 720h, 90m or 1h30m')
    .optional(),
  deviceDnsSuffix: z
    .string()
    .regex(/^(?=.{1,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'a lower-case DNS domain such as devices.example.com')
    .optional(),
  /** Failed enrollment attempts per client address (a guessed secret, a refused takeover): a burst, then per minute. */
  enrollBurst: z.number().int().min(1).max(10_000).default(10),
  enrollPerMinute: z.number().int().min(1).max(100_000).default(10),
  /**
   * Enrollments with one valid secret, and for one device ID. A whole office behind one NAT enrolls with
   * the same secret, so the per-address limit counts failures only; these bound what a leaked secret does.
   */
  enrollPerSecretPerMinute: z.number().int().min(1).max(100_000).default(300),
  enrollPerDevicePerMinute: z.number().int().min(1).max(1000).default(6),
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  /**
   * Take the client address from X-Forwarded-For (behind a reverse proxy that sets it). Off: the socket's
   * address, which a client cannot forge; it is what rate limits and the audit log use.
   */
  trustProxy: z.boolean().default(false),
  /** The admin web console (/console/): its sessions and sign-in limits. */
  console: z
    .strictObject({
      /** A session unused this long is signed out. */
      idleTimeoutMinutes: z.number().int().min(1).max(24 * 60).default(30),
      /** And any session this old, used or not. */
      absoluteLifetimeHours: z.number().int().min(1).max(7 * 24).default(12),
      /** Failed sign-ins per account name, and per client address: a burst of this many, then this many per minute. */
      signinFailuresPerMinutePerName: z.number().int().min(1).max(10_000).default(5),
      signinFailuresPerMinutePerIp: z.number().int().min(1).max(10_000).default(20),
    })
    .prefault({}),
};

/** With a configured server certificate. */
const storageChosen: [(c: { dataDir?: string | undefined; database?: string | undefined }) => boolean, { message: string; path: string[] }] = [
  (c) => c.dataDir !== undefined || c.database !== undefined,
  { message: 'required unless database is set: SQLite keeps the data there', path: ['dataDir'] },
];

export const serveConfigSchema = z.strictObject(serveKeys).refine(...storageChosen);
export type ServeConfig = z.infer<typeof serveConfigSchema>;

/** What `serve` accepts: without --tls-cert/--tls-key the server gets its certificate from step-ca. */
export const serveCommandSchema = z
  .strictObject({
    ...serveKeys,
    tlsCert: serveKeys.tlsCert.optional(),
    tlsKey: serveKeys.tlsKey.optional(),
    serverName: z.string().min(1).optional().describe('Name (IP or DNS) in the step-ca-issued server certificate; defaults to the listen host'),
  })
  .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { message: 'tlsCert and tlsKey go together', path: ['tlsKey'] })
  .refine(...storageChosen);
export type ServeCommandConfig = z.infer<typeof serveCommandSchema>;

/** Reads a JSON config file; flags given on the command line win over its keys. */
export async function loadConfigFile(path: string | undefined): Promise<Record<string, unknown>> {
  if (!path) return {};
  const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${path}: the config file must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

export function formatZodError(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
