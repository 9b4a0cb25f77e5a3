import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nginxConfig } from '../harness/nginx.js';
import { ROOT } from '../helpers.js';

describe('docs/gateway.md', () => {
  it('shows the nginx configuration the end-to-end test runs', () => {
    const doc = readFileSync(join(ROOT, 'docs/gateway.md'), 'utf8');
    const block = /```nginx\n([\s\S]*?)```/.exec(doc)?.[1];
    // The doc shows the root case: the `user` line appears only when nginx starts as root.
    const generated = nginxConfig({
      dir: '/var/lib/vigil-gw',
      port: 443,
      certFile: '/etc/vigil-gw/gateway.crt',
      keyFile: '/etc/vigil-gw/gateway.key',
      clientRootFile: '/etc/vigil-gw/root_ca.crt',
      upstream: '127.0.0.1:8080',
      authz: '127.0.0.1:9180',
      fixUrl: 'https://help.example.com/vigil',
    });
    const asRoot = generated.startsWith('user ') ? generated : `user nobody nogroup;\n${generated}`;
    expect(block).toBe(asRoot);
  });
});
