#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { request } from 'node:https';
import { Command, Option } from 'commander';
import { createLogger } from '../logging/logger.js';
import { buildLinuxPackage, pemFingerprint, type LinuxTarget } from '../packaging/linux.js';
import { API_TOKEN_SCOPES, apiTokenCreateRequestSchema, secretCreateRequestSchema } from '../protocol/admin.js';
import { formatZodError, loadConfigFile, parseListen, serveCommandSchema } from './config.js';
import { parseDurationSeconds } from './duration.js';
import { copyToPostgres } from './copy-to-postgres.js';
import { startControlPlane } from './server.js';
import { apiTokenInfo, createApiToken, createEnrollmentSecret, ControlPlaneService } from './service.js';
import { PgStorage } from './pg-storage.js';
import { SqliteStorage } from './sqlite-storage.js';
import { addAdmin, adminInfo, adminNameSchema, generatePassword, setAdminPassword } from './accounts.js';
import type { Storage } from './storage.js';
import type { Page, PageQuery } from './storage.js';

/** Commander gives camelCase keys for flags that were set; those override the config file. */
function merged(file: Record<string, unknown>, flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...file };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined && k !== 'config') out[k] = v;
  return out;
}

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${v}`);
  return n;
};

/** Every item of a paged list, page by page (the CLI prints the whole list). */
async function allPages<T>(list: (page: PageQuery) => Promise<Page<T>>): Promise<T[]> {
  const out: T[] = [];
  let after: string | null = null;
  do {
    const page: Page<T> = await list({ after, limit: 1000 });
    out.push(...page.items);
    after = page.next;
  } while (after !== null);
  return out;
}

/** --database, else `database` in --config, else VIGIL_DATABASE_URL (which keeps a password out of `ps`). */
function databaseFrom(flags: { database?: string }, file: Record<string, unknown>): string | undefined {
  const url = flags.database ?? file.database ?? process.env.VIGIL_DATABASE_URL;
  if (url === undefined || url === '') return undefined;
  if (typeof url !== 'string' || !/^postgres(ql)?:\/\/\S+$/.test(url)) throw new Error('--database: expected a postgres:// URL');
  return url;
}

/** --data-dir, else `dataDir` in --config. */
function dataDirFrom(flags: { dataDir?: string }, file: Record<string, unknown>): string {
  const dir = flags.dataDir ?? file.dataDir;
  if (typeof dir !== 'string' || dir === '') throw new Error('--data-dir (or dataDir in --config) is required');
  return dir;
}

/** The storage the server uses: PostgreSQL when a database is configured, else SQLite in the data dir. */
async function storageFrom(flags: { dataDir?: string; database?: string; config?: string }): Promise<Storage> {
  const file = await loadConfigFile(flags.config);
  const url = databaseFrom(flags, file);
  if (url !== undefined) return PgStorage.open(url);
  return new SqliteStorage(dataDirFrom(flags, file));
}

const program = new Command('vigil-control-plane')
  .description('Vigil reference control plane: enrollment, posture reports over mTLS, policy, decisions')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the HTTPS (mTLS) server')
  .option('--config <file>', 'JSON file whose keys are these flags in camelCase')
  .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8443)')
  .option('--data-dir <dir>', 'where the SQLite database lives (not used with --database)')
  .option('--database <url>', 'PostgreSQL URL, shared by several instances (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .option('--ca-url <url>', 'step-ca URL handed to enrolling devices')
  .option('--ca-root <file>', 'step-ca root certificate: the only CA client certificates may chain to')
  .option('--provisioner <name>', 'step-ca JWK provisioner name')
  .option('--provisioner-key <file>', 'JWK provisioner private key (PEM or decrypted JWK)')
  .option('--admin-token-file <file>', 'file holding the admin bearer token')
  .option('--tls-cert <file>', 'server certificate chain (PEM)')
  .option('--tls-key <file>', 'server private key (PEM)')
  .option('--server-name <name>', 'without --tls-cert: name (IP or DNS) in the server certificate from step-ca (default: the listen host)')
  .option('--device-cert-duration <duration>', 'lifetime of device certificates, e.g. 720h (default: the provisioner\'s)')
  .option('--device-dns-suffix <domain>', 'device DNS names must be <id>.<domain> (e.g. devices.example.com)')
  .addOption(new Option('--report-interval-seconds <n>', 'heartbeat interval asked of agents').argParser(int))
  .addOption(new Option('--max-report-age-seconds <n>', 'silence after which a device is stale').argParser(int))
  .addOption(new Option('--log-level <level>').choices(['error', 'warn', 'info', 'debug']))
  .action(async (flags: Record<string, unknown>) => {
    const file = await loadConfigFile(typeof flags.config === 'string' ? flags.config : undefined);
    const database = databaseFrom(flags, file);
    const parsed = serveCommandSchema.safeParse({ ...merged(file, flags), ...(database === undefined ? {} : { database }) });
    if (!parsed.success) throw new Error(`invalid configuration: ${formatZodError(parsed.error)}`);
    const logger = createLogger({ level: parsed.data.logLevel, console: true });
    const running = await startControlPlane(parsed.data, { logger });
    const stop = (): void => {
      running.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

interface PackageFlags {
  target: LinuxTarget | 'msi' | 'pkg';
  input?: string;
  out: string;
  config?: string;
  enrollmentSecret?: string;
  enrollmentSecretFile?: string;
  controlPlaneUrl?: string;
  caUrl?: string;
  caRoot?: string;
}

/**
 * The URL devices reach this server at: the serve config's serverName (the name in its certificate) or listen
 * host, with its port. A wildcard listen address names no host, so then --control-plane-url is required.
 */
function controlPlaneUrlFrom(file: Record<string, unknown>): string | undefined {
  const listen = parseListen(typeof file.listen === 'string' ? file.listen : '127.0.0.1:8443');
  if (listen === null) return undefined;
  const host = typeof file.serverName === 'string' ? file.serverName : listen.host;
  if (host === '0.0.0.0' || host === '::') return undefined;
  return `https://${host.includes(':') ? `[${host}]` : host}:${listen.port}`;
}

program
  .command('package')
  .description('build an agent installer (.deb, .rpm, .msi or an unsigned .pkg) that enrolls the device by itself with an enrollment secret')
  .addOption(new Option('--target <target>', 'installer format').choices(['deb', 'rpm', 'msi', 'pkg']).makeOptionMandatory())
  .option('--input <dir>', 'msi/pkg: the Windows or macOS build inputs (default build/installer-input)')
  .option('--enrollment-secret <secret>', 'the secret baked in (from `secret create`)')
  .option('--enrollment-secret-file <file>', 'read the secret from this file instead (keeps it out of `ps`)')
  .option('--out <dir>', 'where the installer goes', '.')
  .option('--config <file>', 'the serve config: its caUrl, caRoot, listen and serverName are used')
  .option('--control-plane-url <url>', 'the URL devices reach this server at (default: https://<serverName or listen host>:<port>)')
  .option('--ca-url <url>', 'step-ca URL (default: caUrl in --config)')
  .option('--ca-root <file>', 'step-ca root certificate, whose fingerprint devices pin (default: caRoot in --config)')
  .action(async (flags: PackageFlags) => {
    const file = await loadConfigFile(flags.config);
    const secretText = flags.enrollmentSecret ?? (flags.enrollmentSecretFile === undefined ? undefined : await readFile(flags.enrollmentSecretFile, 'utf8'));
    const secretValue = secretText?.trim();
    if (secretValue === undefined || secretValue === '') throw new Error('--enrollment-secret or --enrollment-secret-file is required');
    const caUrl = flags.caUrl ?? (typeof file.caUrl === 'string' ? file.caUrl : undefined);
    const caRoot = flags.caRoot ?? (typeof file.caRoot === 'string' ? file.caRoot : undefined);
    const controlPlaneUrl = flags.controlPlaneUrl ?? controlPlaneUrlFrom(file);
    if (caUrl === undefined) throw new Error('--ca-url (or caUrl in --config) is required');
    if (caRoot === undefined) throw new Error('--ca-root (or caRoot in --config) is required: devices pin its fingerprint');
    if (controlPlaneUrl === undefined) throw new Error('--control-plane-url is required: the config listens on a wildcard address, which names no host');
    const fingerprint = pemFingerprint(await readFile(caRoot, 'utf8'));
    if (flags.target === 'msi' || flags.target === 'pkg') {
      const { packageInstaller } = await import('../installers/index.js');
      const result = await packageInstaller({
        target: flags.target,
        ...(flags.input === undefined ? {} : { inputDir: flags.input }),
        outDir: resolve(flags.out),
        enrollment: { controlPlaneUrl, caUrl, fingerprint, enrollmentSecret: secretValue },
      });
      process.stdout.write(`${result.artifact}\n`);
      process.stderr.write(`enrolls with ${controlPlaneUrl} and ${caUrl} (root ${fingerprint}); next: ${result.next}\n`);
      return;
    }
    const out = await buildLinuxPackage({
      target: flags.target,
      outDir: resolve(flags.out),
      enrollment: { controlPlaneUrl, caUrl, fingerprint, secret: secretValue },
    });
    process.stdout.write(`${out}\n`);
    process.stderr.write(`enrolls with ${controlPlaneUrl} and ${caUrl} (root ${fingerprint}); the secret is inside, readable by root only once installed\n`);
  });

const secret = program.command('secret').description('manage enrollment secrets');

secret
  .command('create')
  .description('create an enrollment secret and print it (only its hash is kept)')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .option('--uses <n>', 'how many devices may enroll with it', '1')
  .option('--expires <duration>', 'lifetime, e.g. 90m, 12h, 7d', '7d')
  .option('--label <text>')
  .option('--json', 'print JSON')
  .action(async (flags: { config?: string; dataDir?: string; uses: string; expires: string; label?: string; json?: boolean }) => {
    const expiresInSeconds = parseDurationSeconds(flags.expires);
    if (expiresInSeconds === null) throw new Error(`--expires ${flags.expires}: expected e.g. 90m, 12h, 7d`);
    const req = secretCreateRequestSchema.safeParse({ uses: Number(flags.uses), expiresInSeconds, label: flags.label });
    if (!req.success) throw new Error(formatZodError(req.error));
    const storage = await storageFrom(flags);
    try {
      const created = await createEnrollmentSecret(storage, req.data, Date.now());
      if (flags.json) process.stdout.write(`${JSON.stringify(created)}\n`);
      else {
        process.stdout.write(`${created.secret}\n`);
        process.stderr.write(`secret ${created.id}: ${created.usesTotal} use(s), expires ${created.expiresAt}. It is not shown again.\n`);
      }
    } finally {
      await storage.close();
    }
  });

secret
  .command('revoke <id>')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .action(async (id: string, flags: { config?: string; dataDir?: string }) => {
    const storage = await storageFrom(flags);
    try {
      if (!(await storage.revokeSecret(id))) throw new Error(`no enrollment secret ${id}`);
    } finally {
      await storage.close();
    }
  });

const token = program
  .command('token')
  .description('manage API tokens: admin (everything) or gateway (read-only: events, devices, decisions; for vigil-authz)');

token
  .command('create')
  .description('create an API token and print it (only its hash is kept)')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .addOption(new Option('--scope <scope>', 'what the token may do').choices([...API_TOKEN_SCOPES]).makeOptionMandatory())
  .requiredOption('--name <text>', 'who or what uses it, e.g. the gateway host')
  .option('--json', 'print JSON')
  .action(async (flags: { config?: string; dataDir?: string; scope: string; name: string; json?: boolean }) => {
    const req = apiTokenCreateRequestSchema.safeParse({ scope: flags.scope, name: flags.name });
    if (!req.success) throw new Error(formatZodError(req.error));
    const storage = await storageFrom(flags);
    try {
      const created = await createApiToken(storage, req.data, Date.now());
      if (flags.json) process.stdout.write(`${JSON.stringify(created)}\n`);
      else {
        process.stdout.write(`${created.token}\n`);
        process.stderr.write(`token ${created.id} (${created.scope}, "${created.name}"). It is not shown again.\n`);
      }
    } finally {
      await storage.close();
    }
  });

token
  .command('list')
  .description('list API tokens (never their values)')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .option('--json', 'print JSON')
  .action(async (flags: { config?: string; dataDir?: string; json?: boolean }) => {
    const storage = await storageFrom(flags);
    try {
      const tokens = (await allPages((p) => storage.listApiTokens(p))).map(apiTokenInfo);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ tokens }, null, 2)}\n`);
        return;
      }
      const rows = [['ID', 'SCOPE', 'NAME', 'CREATED', 'REVOKED'], ...tokens.map((t) => [t.id, t.scope, t.name, t.createdAt, t.revokedAt ?? '-'])];
      const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
      for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`);
    } finally {
      await storage.close();
    }
  });

token
  .command('revoke <id>')
  .description('revoke an API token: refused at once; a running server also ends its event streams within a minute')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .action(async (id: string, flags: { config?: string; dataDir?: string }) => {
    if (!/^[0-9a-f]{16}$/.test(id)) throw new Error(`token revoke ${id}: expected the 16-hex-digit ID that token list shows`);
    const storage = await storageFrom(flags);
    try {
      if (!(await storage.revokeApiToken(id, Date.now()))) throw new Error(`no API token ${id} that is not already revoked`);
      process.stdout.write(`token ${id}: revoked\n`);
    } finally {
      await storage.close();
    }
  });

program
  .command('devices')
  .description('list enrolled devices')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .addOption(new Option('--max-report-age-seconds <n>', 'as the server is configured (for the stale column)').argParser(int))
  .option('--json', 'print JSON')
  .action(async (flags: { config?: string; dataDir?: string; maxReportAgeSeconds?: number; json?: boolean }) => {
    const file = await loadConfigFile(flags.config);
    const storage = await storageFrom(flags);
    try {
      const maxAge = flags.maxReportAgeSeconds ?? (typeof file.maxReportAgeSeconds === 'number' ? file.maxReportAgeSeconds : 900);
      const now = Date.now();
      const stored = await allPages(async (p) => {
        const res = await storage.listDevicesPage({ ...p, staleBefore: now - maxAge * 1000, filter: {} });
        return { items: res.devices, next: res.next };
      });
      const devices = stored.map((d) => ControlPlaneService.summarize(d, maxAge, now));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ devices }, null, 2)}\n`);
        return;
      }
      const rows = [['DEVICE', 'HOSTNAME', 'STATE', 'ACCESS', 'LAST SEEN'], ...devices.map((d) => [d.id, d.hostname, d.state, d.accessLevel, d.lastSeen ?? '-'])];
      const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
      for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`);
    } finally {
      await storage.close();
    }
  });

interface AdminFlags {
  config?: string;
  url?: string;
  adminTokenFile?: string;
  caRoot?: string;
}

/**
 * One admin API call to the running server. Device actions go through it rather than the database, because
 * the server also has to revoke at the CA, close the device's streams and announce the change.
 */
async function adminCall(flags: AdminFlags, method: string, path: string): Promise<{ status: number; body: string }> {
  const file = await loadConfigFile(flags.config);
  const listen = typeof file.listen === 'string' ? parseListen(file.listen) : null;
  const host = listen?.host.includes(':') === true ? `[${listen.host}]` : listen?.host;
  const url = flags.url ?? (listen ? `https://${host === '0.0.0.0' ? '127.0.0.1' : host}:${listen.port}` : 'https://127.0.0.1:8443');
  const tokenFile = flags.adminTokenFile ?? (typeof file.adminTokenFile === 'string' ? file.adminTokenFile : undefined);
  const caRoot = flags.caRoot ?? (typeof file.caRoot === 'string' ? file.caRoot : undefined);
  if (tokenFile === undefined) throw new Error('--admin-token-file (or adminTokenFile in --config) is required');
  if (caRoot === undefined) throw new Error('--ca-root (or caRoot in --config) is required: the server certificate is verified against it');
  const [token, ca] = await Promise.all([readFile(tokenFile, 'utf8'), readFile(caRoot, 'utf8')]);
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method, ca, headers: { authorization: `Bearer ${token.trim()}` }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 30 s`)));
    req.on('error', (err) => {
      reject(new Error(`cannot reach the control plane at ${url}: ${err.message}`));
    });
    req.end();
  });
}

function messageOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : body;
  } catch {
    return body;
  }
}

const device = program.command('device').description('act on one device through the running server (admin API)');

const DEVICE_ACTIONS = [
  ['revoke', 'POST', '/revoke', 'revoke the device here and its certificate at the CA'],
  ['readmit', 'POST', '/readmit', 'lift a revocation: the device may enroll once more'],
  ['allow-reenroll', 'POST', '/allow-reenroll', 'let the next enrollment of this ID replace the device without its certificate'],
  ['remove', 'DELETE', '', 'delete the device and its history, revoking its certificate at the CA'],
] as const;

for (const [name, method, suffix, description] of DEVICE_ACTIONS) {
  device
    .command(`${name} <id>`)
    .description(description)
    .option('--config <file>', 'the serve config: its listen, adminTokenFile and caRoot are used')
    .option('--url <url>', 'the control plane (default: from --config, else https://127.0.0.1:8443)')
    .option('--admin-token-file <file>')
    .option('--ca-root <file>', 'step-ca root certificate, to verify the server')
    .action(async (id: string, flags: AdminFlags) => {
      const res = await adminCall(flags, method, `/v1/admin/devices/${encodeURIComponent(id)}${suffix}`);
      if (res.status >= 300) throw new Error(`${name} ${id}: ${messageOf(res.body)} (HTTP ${res.status})`);
      const ca = res.body ? (JSON.parse(res.body) as { ca?: string }).ca : undefined;
      process.stdout.write(`${name} ${id}: done${ca === undefined ? '' : `; certificate at the CA: ${ca}`}\n`);
      if (ca?.startsWith('failed') === true) process.exitCode = 1;
    });
}

/**
 * A password from stdin: typed at a terminal without echo (twice), or the first line of what is piped in. Never
 * from argv, which other users of the host can read in `ps`.
 */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    const first = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (first === '') throw new Error('no password on stdin (pipe one in, or use --generate)');
    return first;
  }
  const ask = (prompt: string): Promise<string> =>
    new Promise((resolve, reject) => {
      process.stderr.write(prompt);
      stdin.setRawMode(true);
      stdin.resume();
      let typed = '';
      const done = (err: Error | null): void => {
        stdin.off('data', onData);
        stdin.setRawMode(false);
        stdin.pause();
        process.stderr.write('\n');
        if (err) reject(err);
        else resolve(typed);
      };
      const onData = (c: Buffer): void => {
        for (const ch of c.toString('utf8')) {
          if (ch === '\r' || ch === '\n' || ch === '\u0003') {
            done(ch === '\u0003' ? new Error('interrupted') : null);
            return;
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      stdin.on('data', onData);
    });
  const first = await ask('Password: ');
  if ((await ask('Again: ')) !== first) throw new Error('the two passwords differ');
  return first;
}

/** Account changes made on the host are audited like those made through the API, as the OS user who made them. */
const cliActor = (): string => `cli:${userInfo().username}`;

async function withStorageOf<T>(flags: { config?: string; dataDir?: string; database?: string }, fn: (s: Storage) => Promise<T>): Promise<T> {
  const storage = await storageFrom(flags);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

const nameOf = (name: string): string => {
  const r = adminNameSchema.safeParse(name);
  if (!r.success) throw new Error(`--name ${name}: ${r.error.issues[0]?.message ?? 'not a valid name'}`);
  return r.data;
};

const adminCmd = program.command('admin').description('manage admin console accounts (on the server host; passwords hashed with scrypt)');

adminCmd
  .command('add')
  .description('create an account; the password is read from stdin (or typed, without echo), or generated and printed once')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .requiredOption('--name <name>', 'the account name, e.g. alice')
  .option('--generate', 'generate a random password and print it once')
  .action(async (flags: { config?: string; dataDir?: string; name: string; generate?: boolean }) => {
    const name = nameOf(flags.name);
    const password = flags.generate === true ? generatePassword() : await readPassword();
    await withStorageOf(flags, async (s) => {
      await addAdmin(s, name, password, Date.now());
      await s.appendAudit({ at: Date.now(), actor: cliActor(), action: 'admin.add', target: name, ip: null, detail: null });
    });
    if (flags.generate === true) {
      process.stdout.write(`${password}\n`);
      process.stderr.write(`admin ${name} created. The password is not shown again.\n`);
    } else process.stderr.write(`admin ${name} created\n`);
  });

adminCmd
  .command('list')
  .description('list accounts (never their passwords)')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .option('--json', 'print JSON')
  .action(async (flags: { config?: string; dataDir?: string; json?: boolean }) => {
    const admins = (await withStorageOf(flags, (s) => s.listAdmins())).map(adminInfo);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ admins }, null, 2)}\n`);
      return;
    }
    const rows = [['NAME', 'CREATED', 'DISABLED'], ...admins.map((a) => [a.name, a.createdAt, a.disabled ? 'yes' : 'no'])];
    const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
    for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`);
  });

adminCmd
  .command('remove')
  .description('delete an account and end its sessions')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .requiredOption('--name <name>')
  .action(async (flags: { config?: string; dataDir?: string; name: string }) => {
    const name = nameOf(flags.name);
    await withStorageOf(flags, async (s) => {
      if (!(await s.deleteAdmin(name))) throw new Error(`--name ${name}: no such admin account`);
      await s.appendAudit({ at: Date.now(), actor: cliActor(), action: 'admin.remove', target: name, ip: null, detail: null });
    });
    process.stderr.write(`admin ${name} removed; its sessions are ended\n`);
  });

adminCmd
  .command('passwd')
  .description('set an account\'s password (from stdin, typed, or --generate) and end its sessions')
  .option('--config <file>')
  .option('--data-dir <dir>')
  .option('--database <url>', 'PostgreSQL URL (default: VIGIL_DATABASE_URL; else SQLite in --data-dir)')
  .requiredOption('--name <name>')
  .option('--generate', 'generate a random password and print it once')
  .action(async (flags: { config?: string; dataDir?: string; name: string; generate?: boolean }) => {
    const name = nameOf(flags.name);
    const password = flags.generate === true ? generatePassword() : await readPassword();
    await withStorageOf(flags, async (s) => {
      await setAdminPassword(s, name, password);
      await s.appendAudit({ at: Date.now(), actor: cliActor(), action: 'admin.passwd', target: name, ip: null, detail: null });
    });
    if (flags.generate === true) process.stdout.write(`${password}\n`);
    process.stderr.write(`admin ${name}: password changed; its sessions are ended\n`);
  });

const dbCmd = program.command('db').description('move the control plane\'s data between storage backends');

dbCmd
  .command('copy-to-postgres')
  .description(
    'copy the SQLite database in --data-dir into an empty PostgreSQL database, in one transaction. Stop the SQLite server first, '
      + 'and start the control plane on PostgreSQL only once the copy has finished',
  )
  .option('--config <file>', 'the serve config: its dataDir and database are used')
  .option('--data-dir <dir>', 'where the SQLite database lives (opened read-only)')
  .option('--database <url>', 'the PostgreSQL URL to fill; its tables must be empty (default: VIGIL_DATABASE_URL)')
  .action(async (flags: { config?: string; dataDir?: string; database?: string }) => {
    const file = await loadConfigFile(flags.config);
    const database = databaseFrom(flags, file);
    if (database === undefined) throw new Error('--database (or database in --config, or VIGIL_DATABASE_URL) is required: the PostgreSQL database to fill');
    const summary = await copyToPostgres({
      dataDir: dataDirFrom(flags, file),
      database,
      onProgress: (table, done, total) => process.stderr.write(`${table} ${done}/${total}\n`),
    });
    const counts = summary.tables.filter((t) => t.rows > 0).map((t) => `${t.rows} ${t.table}`);
    process.stdout.write(
      `copied ${counts.length > 0 ? counts.join(', ') : 'nothing (the SQLite database is empty)'} in ${(summary.ms / 1000).toFixed(1)} s; events continue after id ${summary.lastEventId}\n`,
    );
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`vigil-control-plane: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
