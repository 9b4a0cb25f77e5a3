import { describe, expect, it } from 'vitest';
import { uiConfigSchema } from '../../src/config/sections/ui.js';
import { APP_ORIGIN, CONTENT_SECURITY_POLICY, isTrustedSender, resolveAsset, WALKTHROUGH_URL } from '../../src/ui/content.js';
import { IPC, IPC_CONTRACT, parseInvokeArgs } from '../../src/ui/ipc.js';

describe('IPC contract', () => {
  it('has a schema for every invoke channel and no generic passthrough', () => {
    expect(Object.keys(IPC_CONTRACT).sort()).toEqual([IPC.checkAgain, IPC.getState, IPC.openSettings].sort());
  });

  it('accepts a check id and nothing else', () => {
    expect(parseInvokeArgs(IPC.checkAgain, ['firewall'])).toEqual({ ok: true, args: ['firewall'] });
    expect(parseInvokeArgs(IPC.openSettings, ['screen-lock'])).toEqual({ ok: true, args: ['screen-lock'] });
    expect(parseInvokeArgs(IPC.getState, [])).toEqual({ ok: true, args: [] });
  });

  it.each([
    ['a URL', ['https://evil.example/']],
    ['a command', ['gnome-control-center; rm -rf ~']],
    ['a path', ['../../etc/passwd']],
    ['an object', [{ checkId: 'firewall' }]],
    ['extra arguments', ['firewall', 'https://evil.example/']],
    ['no argument', []],
    ['an over-long id', ['a'.repeat(65)]],
    ['upper case', ['Firewall']],
  ])('rejects %s for openSettings', (_what, args) => {
    const parsed = parseInvokeArgs(IPC.openSettings, args);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problem).toMatch(/^vigil:open-settings: rejected arguments/);
  });

  it('rejects arguments to getState', () => {
    expect(parseInvokeArgs(IPC.getState, ['x']).ok).toBe(false);
  });
});

describe('local content', () => {
  it('serves only the renderer files from our origin', () => {
    expect(resolveAsset(WALKTHROUGH_URL)).toEqual({ file: 'index.html', contentType: 'text/html; charset=utf-8' });
    expect(resolveAsset(`${APP_ORIGIN}/`)?.file).toBe('index.html');
    expect(resolveAsset(`${APP_ORIGIN}/app.js`)?.file).toBe('app.js');
    expect(resolveAsset(`${APP_ORIGIN}/styles.css`)?.file).toBe('styles.css');
  });

  it.each([
    `${APP_ORIGIN}/../../etc/passwd`,
    `${APP_ORIGIN}/%2e%2e/%2e%2e/etc/passwd`,
    `${APP_ORIGIN}/preload.cjs`,
    `${APP_ORIGIN}/index.html?x=1`,
    'vigil://other/index.html',
    'vigil://user:pw@app/index.html',
    'file:///etc/passwd',
    'https://app/index.html',
    'not a url',
  ])('refuses %s', (url) => {
    expect(resolveAsset(url)).toBeUndefined();
  });

  it('trusts IPC only from our page', () => {
    expect(isTrustedSender(WALKTHROUGH_URL)).toBe(true);
    expect(isTrustedSender(`${WALKTHROUGH_URL}#check-firewall`)).toBe(true);
    expect(isTrustedSender(`${APP_ORIGIN}/app.js`)).toBe(false);
    expect(isTrustedSender('https://evil.example/index.html')).toBe(false);
    expect(isTrustedSender('file:///work/dist/electron/renderer/index.html')).toBe(false);
    expect(isTrustedSender(undefined)).toBe(false);
  });

  it('allows no inline script, no network and no framing', () => {
    expect(CONTENT_SECURITY_POLICY).toContain("default-src 'none'");
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain('unsafe');
    expect(CONTENT_SECURITY_POLICY).toContain("frame-ancestors 'none'");
  });
});

describe('ui config', () => {
  it('has a default for every key', () => {
    expect(uiConfigSchema.parse({})).toEqual({ allowQuit: true, notifications: true, notificationCooldownMinutes: 240, startAtLogin: true });
  });

  it('lets managed config forbid quitting', () => {
    expect(uiConfigSchema.parse({ allowQuit: false }).allowQuit).toBe(false);
    expect(uiConfigSchema.safeParse({ notificationCooldownMinutes: -1 }).success).toBe(false);
  });
});

describe('renderer page', () => {
  it('carries the same CSP in its meta tag as main sends in the header (less frame-ancestors, which meta cannot set)', async () => {
    const { readFile } = await import('node:fs/promises');
    const html = await readFile(new URL('../../electron/renderer/index.html', import.meta.url), 'utf8');
    const meta = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1];
    expect(meta).toBe(CONTENT_SECURITY_POLICY.replace("; frame-ancestors 'none'", ''));
  });
});
