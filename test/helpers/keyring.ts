import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway HOME whose login keyring is an unlocked plaintext test keyring gnome-keyring can open headless. */
export async function keyringHome(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vigil-keyring-home-'));
  const keyrings = join(dir, '.local', 'share', 'keyrings');
  await mkdir(keyrings, { recursive: true });
  await writeFile(join(keyrings, 'login.keyring'), '[keyring]\ndisplay-name=login\nctime=0\nmtime=0\nlock-on-idle=false\nlock-after=false\n');
  await writeFile(join(keyrings, 'default'), 'login');
  return dir;
}
