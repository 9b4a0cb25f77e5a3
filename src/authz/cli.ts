#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { createLogger } from '../logging/logger.js';
import { authzConfigSchema, configErrors, loadAuthzConfigFile } from './config.js';
import { startAuthz } from './server.js';

const int = (flag: string) => (v: string): number => {
  if (!/^\d{1,9}$/.test(v)) throw new Error(`${flag} ${v}: expected a whole number of seconds`);
  return Number(v);
};

async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${what} ${path}: cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return text.trim();
}

const program = new Command('vigil-authz')
  .description('Authorizer beside a gateway: follows the control plane event stream and answers nginx auth_request / Envoy ext_authz from memory')
  .showHelpAfterError();

program
  .command('serve', { isDefault: true })
  .description('follow the control plane and answer authorization requests')
  .option('--config <file>', 'JSON file whose keys are these flags in camelCase')
  .option('--listen <host:port>', 'where the gateway asks (default 127.0.0.1:9180)')
  .option('--control-plane-url <url>', 'https:// URL of vigil-control-plane')
  .option('--ca-root <file>', 'step-ca root certificate: the control plane server certificate is verified against it')
  .option('--token-file <file>', 'file holding a gateway API token (vigil-control-plane token create --scope gateway)')
  .option('--fix-url <url>', 'where a refused user learns how to fix the device; {device} and {reason} are filled in')
  .addOption(new Option('--max-lag-seconds <n>', 'event stream down longer than this: stop trusting the device list (default 15)').argParser(int('--max-lag-seconds')))
  .addOption(new Option('--on-lag <mode>', 'past --max-lag-seconds: deny everything, or answer from the last known state for a grace').choices(['deny', 'last-known']))
  .addOption(new Option('--last-known-grace-seconds <n>', 'with --on-lag last-known: how long (default 300)').argParser(int('--last-known-grace-seconds')))
  .addOption(new Option('--minimum-level <level>', 'access level a device needs (default full)').choices(['full', 'limited']))
  .option('--require-os <rule...>', 'allowed OSes, e.g. "macOS 13+" "Windows 11" "Ubuntu 22.04+"')
  .option('--require-managed', 'only devices managed by the organisation (mdm-enrolled passes)')
  .addOption(new Option('--stream-idle-seconds <n>', 'a silent event stream is reopened after this (default 40)').argParser(int('--stream-idle-seconds')))
  .addOption(new Option('--log-level <level>').choices(['error', 'warn', 'info', 'debug']))
  .action(async (flags: Record<string, unknown>) => {
    const configPath = typeof flags.config === 'string' ? flags.config : undefined;
    const merged: Record<string, unknown> = { ...(await loadAuthzConfigFile(configPath)) };
    for (const [k, v] of Object.entries(flags)) if (v !== undefined && k !== 'config') merged[k] = v;
    const parsed = authzConfigSchema.safeParse(merged);
    if (!parsed.success) throw new Error(`invalid configuration${configPath === undefined ? '' : ` (${configPath} and flags)`}: ${configErrors(parsed.error)}`);
    const config = parsed.data;
    const [caRootPem, token] = await Promise.all([readSecretFile(config.caRoot, 'caRoot'), readSecretFile(config.tokenFile, 'tokenFile')]);
    if (!caRootPem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`caRoot ${config.caRoot}: expected a PEM certificate`);
    if (!/^vgt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/.test(token) && token.length < 16) {
      throw new Error(`tokenFile ${config.tokenFile}: expected an API token (vgt_...) or an admin token of at least 16 characters`);
    }
    const logger = createLogger({ level: config.logLevel, console: true });
    const running = await startAuthz({ config, caRootPem, token, logger });
    const stop = (): void => {
      running.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`vigil-authz: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
