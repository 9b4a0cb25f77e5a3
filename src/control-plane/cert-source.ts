import { readFile } from 'node:fs/promises';
import { watchFile, unwatchFile } from 'node:fs';

export interface ServerCredentials {
  /** PEM leaf followed by any intermediates. */
  cert: string;
  key: string;
}

/**
 * Where the control plane's own TLS certificate comes from. Files today; a step-ca-backed source (mint an
 * OTT with the provisioner key, enroll, renew before expiry) implements the same interface and calls the
 * listeners after each renewal, and the server swaps its secure context without dropping connections.
 */
export interface CertificateSource {
  load(): Promise<ServerCredentials>;
  /** Called after the credentials change; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  close(): void;
}

/** A configured cert and key; an operator (or certbot/step renew) replacing the files is picked up. */
export class FileCertificateSource implements CertificateSource {
  private readonly listeners = new Set<() => void>();
  private watching = false;

  constructor(
    private readonly certPath: string,
    private readonly keyPath: string,
    private readonly pollMs = 30_000,
  ) {}

  async load(): Promise<ServerCredentials> {
    const [cert, key] = await Promise.all([readFile(this.certPath, 'utf8'), readFile(this.keyPath, 'utf8')]);
    return { cert, key };
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.watching) {
      this.watching = true;
      // Polling, because renewers replace files by rename and an inotify watch would follow the old inode.
      // Both files: whichever a renewer writes last completes the pair (a half-written pair fails to load
      // and the server keeps the old one until the other file lands).
      for (const path of [this.certPath, this.keyPath]) {
        watchFile(path, { interval: this.pollMs, persistent: false }, () => {
          for (const l of this.listeners) l();
        });
      }
    }
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.listeners.clear();
    if (this.watching) for (const path of [this.certPath, this.keyPath]) unwatchFile(path);
    this.watching = false;
  }
}
