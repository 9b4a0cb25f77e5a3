import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Debian ships step-ca 0.19 as Go library source only; this is our own entry point over it. */
const MAIN_GO = `package main

import (
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/smallstep/certificates/authority/config"
	"github.com/smallstep/certificates/ca"
)

// Usage: vigil-step-ca <ca.json> <password-file>
func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: vigil-step-ca <ca.json> <password-file>")
	}
	cfgPath := os.Args[1]
	pw, err := os.ReadFile(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	cfg, err := config.LoadConfiguration(cfgPath)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := ca.New(cfg, ca.WithConfigFile(cfgPath), ca.WithPassword(pw))
	if err != nil {
		log.Fatal(err)
	}
	// A graceful stop closes the badger DB so a restart on the same data dir is clean.
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		if err := srv.Stop(); err != nil {
			log.Printf("stop: %v", err)
		}
		os.Exit(0)
	}()
	if err := srv.Run(); err != nil {
		log.Fatal(err)
	}
}
`;

export const GOCODE = '/usr/share/gocode';

export async function stepCaDebianVersion(): Promise<string> {
  const { stdout } = await execFileP('dpkg-query', ['-W', '-f=${Version}', 'golang-github-smallstep-certificates-dev']);
  const v = stdout.trim();
  if (!v) throw new Error('golang-github-smallstep-certificates-dev is not installed (apt-get install it)');
  return v;
}

function cacheRoot(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vigil-test');
}

const mainHash = createHash('sha256').update(MAIN_GO).digest('hex').slice(0, 12);

export async function stepCaBinaryPath(): Promise<string> {
  const dir = join(cacheRoot(), `step-ca-${await stepCaDebianVersion()}`);
  // The main.go hash is in the name so editing it here forces a rebuild.
  return join(dir, `vigil-step-ca-${mainHash}`);
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * mkdir is atomic, so it is the lock: whoever creates `build.lock` builds, the others wait for the
 * binary. A lock left by a dead builder (its pid is recorded inside) is taken over.
 */
async function withBuildLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, 'build.lock');
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Someone else holds the lock: wait for it, or take it over if its owner is gone.
      const owner = Number.parseInt(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''), 10);
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if ((Number.isFinite(owner) && !pidAlive(owner)) || (!Number.isFinite(owner) && age > 10_000)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`, { cause: err });
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Builds step-ca once per Debian package version; later calls return the cached binary. */
export async function ensureStepCaBinary(log: (s: string) => void = () => undefined): Promise<string> {
  const bin = await stepCaBinaryPath();
  if (existsSync(bin)) return bin;
  const dir = join(bin, '..');
  await mkdir(dir, { recursive: true });
  return withBuildLock(dir, async () => {
    if (existsSync(bin)) return bin;
    const gopath = join(dir, 'gopath');
    const srcDir = join(gopath, 'src', 'vigil-step-ca');
    await mkdir(srcDir, { recursive: true });
    await writeFile(join(srcDir, 'main.go'), MAIN_GO);
    const tmp = `${bin}.${process.pid}.tmp`;
    log(`building step-ca from ${GOCODE} into ${bin} (about 80 s on a cold cache)`);
    const started = Date.now();
    await execFileP('go', ['build', '-o', tmp, '.'], {
      cwd: srcDir,
      env: {
        ...process.env,
        GO111MODULE: 'off',
        GOPATH: `${gopath}:${GOCODE}`,
        GOFLAGS: '',
        GOCACHE: join(dir, 'go-build-cache'),
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    await rename(tmp, bin);
    log(`built step-ca in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return bin;
  });
}
