import { describe, expect, it } from 'vitest';
import { IdentityError } from '../../src/identity/errors.js';
import { KeychainKeyStorage, keytarStore, type ModuleLoader, type SecretStore } from '../../src/identity/key-storage.js';

/** What Node throws when keytar's package is present but its native binding was never built (the require stack follows). */
const bindingMissing = Object.assign(
  new Error("Cannot find module '../build/Release/keytar.node'\nRequire stack:\n- /app/node_modules/keytar/lib/keytar.js"),
  { code: 'MODULE_NOT_FOUND' },
);
// A loader may reject with anything (a string, too): the message must still be the one line.
// eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
const failing = (err: unknown): ModuleLoader => () => Promise.reject(err);

const memoryStore = (): SecretStore => {
  const m = new Map<string, string>();
  return {
    getPassword: (s, a) => Promise.resolve(m.get(`${s}/${a}`) ?? null),
    setPassword: (s, a, p) => Promise.resolve(void m.set(`${s}/${a}`, p)),
    deletePassword: (s, a) => Promise.resolve(m.delete(`${s}/${a}`)),
  };
};

async function loadError(load: ModuleLoader, platform: NodeJS.Platform): Promise<IdentityError> {
  const err: unknown = await keytarStore(load, platform).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof IdentityError)) throw new Error(`expected an IdentityError, got ${String(err)}`);
  return err;
}

describe('keytar is optional: where it cannot load, one line says why and what to do', () => {
  it('on Linux: the first line of the load error, then libsecret-1-dev + npm rebuild keytar, or file storage', async () => {
    const err = await loadError(failing(bindingMissing), 'linux');
    expect(err.code).toBe('keychain');
    expect(err.message).not.toContain('\n');
    expect(err.message).toBe(
      "the keychain library keytar could not be loaded (Cannot find module '../build/Release/keytar.node'); " +
        'install libsecret-1-dev (Debian/Ubuntu) and run `npm rebuild keytar`, or set identity.keyStorage to "file"',
    );
    expect(err.cause).toBe(bindingMissing);
  });

  it('names the missing shared library when the binding was built but libsecret is gone at run time', async () => {
    const err = await loadError(failing(new Error('libsecret-1.so.0: cannot open shared object file: No such file or directory')), 'linux');
    expect(err.message).toMatch(/^the keychain library keytar could not be loaded \(libsecret-1\.so\.0: cannot open shared object file: No such file or directory\); install libsecret-1-dev/);
  });

  it('on Linux, when npm skipped keytar (its build failed), the advice is `npm install`: `npm rebuild keytar` would do nothing', async () => {
    const missing = Object.assign(new Error("Cannot find package 'keytar' imported from /app/dist/src/identity/key-storage.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const err = await loadError(failing(missing), 'linux');
    expect(err.message).toBe(
      "the keychain library keytar could not be loaded (Cannot find package 'keytar' imported from /app/dist/src/identity/key-storage.js); " +
        'install libsecret-1-dev (Debian/Ubuntu) and run `npm install`, or set identity.keyStorage to "file"',
    );
  });

  it.each([
    ['darwin', 'reinstall it with `npm install` (building it needs the Xcode command-line tools), or set identity.keyStorage to "file"'],
    ['win32', 'reinstall it with `npm install` (building it needs the Visual Studio C++ build tools), or set identity.keyStorage to "file"'],
    ['freebsd', 'reinstall it with `npm install`, or set identity.keyStorage to "file"'],
  ] as const)('on %s the advice is to reinstall', async (platform, advice) => {
    const err = await loadError(failing(new Error("Cannot find package 'keytar' imported from /app/dist/src/identity/key-storage.js")), platform);
    expect(err.message).toBe(`the keychain library keytar could not be loaded (Cannot find package 'keytar' imported from /app/dist/src/identity/key-storage.js); ${advice}`);
  });

  it('a non-Error rejection and a module without the functions both still give the one line', async () => {
    expect((await loadError(failing('boom'), 'linux')).message).toMatch(/^the keychain library keytar could not be loaded \(boom\); install libsecret-1-dev/);
    const wrong = await loadError(() => Promise.resolve({ default: { getPassword: 1 } }), 'linux');
    expect(wrong.message).toMatch(/could not be loaded \(the module does not export getPassword, setPassword and deletePassword\); /);
  });

  it('accepts keytar as Node imports it (functions on `default`) and as a plain namespace', async () => {
    const store = memoryStore();
    const asked: string[] = [];
    await expect(keytarStore((s) => (asked.push(s), Promise.resolve({ default: store })), 'linux')).resolves.toBe(store);
    expect(asked).toEqual(['keytar']);
    await expect(keytarStore(() => Promise.resolve(store), 'linux')).resolves.toBe(store);
  });

  it('keychain storage reports the load failure as is, not wrapped in "the OS keychain is not available"', async () => {
    const storage = new KeychainKeyStorage(() => keytarStore(failing(bindingMissing), 'linux'), 'Vigil');
    const err: unknown = await storage.seal(Buffer.alloc(138)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as IdentityError).message).toMatch(/^the keychain library keytar could not be loaded \(Cannot find module '\.\.\/build\/Release\/keytar\.node'\); install libsecret-1-dev/);
    await expect(storage.destroy()).rejects.toThrow(/^the keychain library keytar could not be loaded/);
  });

  it('the default loader imports the real keytar where it is installed, or fails with the one line', async () => {
    // Either outcome is legitimate (keytar is optional); what must never happen is a bare, multi-line Node error.
    const result = await keytarStore().then(
      (s) => ({ loaded: typeof s.getPassword === 'function' }),
      (e: unknown) => ({ error: e }),
    );
    if ('error' in result) {
      expect(result.error).toBeInstanceOf(IdentityError);
      expect((result.error as IdentityError).message).toMatch(/^the keychain library keytar could not be loaded \([^\n]+\); [^\n]+$/);
    } else {
      expect(result.loaded).toBe(true);
    }
  });
});
