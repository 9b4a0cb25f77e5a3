import { arch, hostname, release, userInfo } from 'node:os';

/** What Node itself knows about the machine, for DeviceFacts. */
export interface HostInfo {
  hostname: string;
  arch: string;
  kernel: string;
  user: string | null;
}

export function currentHost(): HostInfo {
  let user: string | null = null;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (e.g. a container's arbitrary uid): the user stays unknown.
  }
  return { hostname: hostname(), arch: arch(), kernel: release(), user };
}
