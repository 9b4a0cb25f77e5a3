// Renders the tray icons (one distinct shape per state, so colour is never the only cue) from SVG with
// Debian's Chromium through playwright-core, and writes:
//   build/icons/tray/<state>-<px>.png      colour, for Linux (SNI/AppIndicator) at several sizes
//   build/icons/tray/<state>Template[@2x].png  black + alpha, for the macOS menu bar (template images)
//   build/icons/tray/<state>.ico           Windows, PNG-compressed entries at 16-64 px
//   build/icons/icon.png                   the 512 px app icon for electron-builder
//   docs/screenshots/tray-icons.png        every icon on light and dark panels, for review
// Run `npm run build:icons` after changing a shape and commit the output.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const OUT = join('build', 'icons');
const TRAY = join(OUT, 'tray');
const COLOUR_SIZES = [16, 22, 24, 32, 44, 48, 64];
const ICO_SIZES = [16, 24, 32, 48, 64];

// 32x32 artwork. `shape` is drawn in the state colour (or black in templates); `glyph` in white (or cut
// out of the shape in templates, so the menu bar shows through).
const ICONS = {
  compliant: {
    colour: '#1a7f37',
    shape: '<path d="M16 1.5 L28.5 6 V15 C28.5 22.8 23.2 28.2 16 30.5 C8.8 28.2 3.5 22.8 3.5 15 V6 Z" fill="S"/>',
    glyph: '<path d="M9.5 16.2 L14 20.6 L22.8 11.2" fill="none" stroke="G" stroke-width="3.4" stroke-linecap="round" stroke-linejoin="round"/>',
  },
  limited: {
    colour: '#b25e00',
    shape: '<path d="M16 2.5 L30.5 28.5 H1.5 Z" fill="S" stroke="S" stroke-width="2" stroke-linejoin="round"/>',
    glyph: '<rect x="14.2" y="10" width="3.6" height="10" rx="1.8" fill="G"/><circle cx="16" cy="24.2" r="2.1" fill="G"/>',
  },
  blocked: {
    colour: '#c62828',
    shape: '<path d="M10.2 1.5 H21.8 L30.5 10.2 V21.8 L21.8 30.5 H10.2 L1.5 21.8 V10.2 Z" fill="S"/>',
    glyph: '<rect x="7.5" y="13.6" width="17" height="4.8" rx="1.2" fill="G"/>',
  },
  checking: {
    colour: '#4b5d73',
    shape: '<circle cx="16" cy="16" r="14.5" fill="S"/>',
    glyph: '<circle cx="9.2" cy="16" r="2.7" fill="G"/><circle cx="16" cy="16" r="2.7" fill="G"/><circle cx="22.8" cy="16" r="2.7" fill="G"/>',
  },
  'needs-enrollment': {
    colour: '#6f42c1',
    shape: '<rect x="2" y="2" width="28" height="28" rx="6.5" fill="S"/>',
    glyph:
      '<circle cx="12" cy="12.5" r="4.6" fill="none" stroke="G" stroke-width="3"/>' +
      '<path d="M15.3 15.8 L24.5 25 M20.2 20.7 L22.8 18.1 M22.8 23.3 L25.4 20.7" fill="none" stroke="G" stroke-width="3" stroke-linecap="round"/>',
  },
  offline: {
    colour: '#57606a',
    shape: '<path d="M8.5 26.5 H24.5 A6.5 6.5 0 0 0 25.3 13.6 A9 9 0 0 0 8 14.9 A5.9 5.9 0 0 0 8.5 26.5 Z" fill="S"/>',
    glyph: '<path d="M9.5 8.5 L22.5 27.5" fill="none" stroke="G" stroke-width="3.2" stroke-linecap="round"/>',
  },
};

let ids = 0;

function svg(icon, size, template) {
  // Unique ids: the review sheet puts many of these in one document.
  const id = `i${++ids}`;
  const body = template
    ? `<defs><mask id="${id}" maskUnits="userSpaceOnUse" x="0" y="0" width="32" height="32"><rect width="32" height="32" fill="white"/>${icon.glyph.replaceAll('"G"', '"black"')}</mask></defs>` +
      `<g mask="url(#${id})">${icon.shape.replaceAll('"S"', '"black"')}</g>`
    : // The glyph is clipped to the shape, so nothing white spills onto a light panel.
      `<defs><clipPath id="${id}">${icon.shape.replaceAll('"S"', '"black"')}</clipPath></defs>` +
      `${icon.shape.replaceAll('"S"', `"${icon.colour}"`)}<g clip-path="url(#${id})">${icon.glyph.replaceAll('"G"', '"white"')}</g>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 32 32">${body}</svg>`;
}

/** An .ico whose entries are PNGs (Windows Vista and later read these). */
function ico(pngs) {
  const header = Buffer.alloc(6);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2);
  header.writeUInt16LE(pngs.length, 4);
  const entries = [];
  let offset = 6 + 16 * pngs.length;
  for (const { size, data } of pngs) {
    const e = Buffer.alloc(16);
    e.writeUInt8(size >= 256 ? 0 : size, 0);
    e.writeUInt8(size >= 256 ? 0 : size, 1);
    e.writeUInt8(0, 2);
    e.writeUInt8(0, 3);
    e.writeUInt16LE(1, 4);
    e.writeUInt16LE(32, 6);
    e.writeUInt32LE(data.length, 8);
    e.writeUInt32LE(offset, 12);
    offset += data.length;
    entries.push(e);
  }
  return Buffer.concat([header, ...entries, ...pngs.map((p) => p.data)]);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  const page = await browser.newPage({ deviceScaleFactor: 1 });
  const render = async (markup, size) => {
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(`<!doctype html><html><body style="margin:0;background:transparent">${markup}</body></html>`);
    return page.screenshot({ type: 'png', omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } });
  };
  mkdirSync(TRAY, { recursive: true });
  for (const [state, icon] of Object.entries(ICONS)) {
    const pngs = new Map();
    for (const size of COLOUR_SIZES) {
      const data = await render(svg(icon, size, false), size);
      pngs.set(size, data);
      writeFileSync(join(TRAY, `${state}-${size}.png`), data);
    }
    writeFileSync(join(TRAY, `${state}Template.png`), await render(svg(icon, 16, true), 16));
    writeFileSync(join(TRAY, `${state}Template@2x.png`), await render(svg(icon, 32, true), 32));
    writeFileSync(join(TRAY, `${state}.ico`), ico(ICO_SIZES.map((size) => ({ size, data: pngs.get(size) }))));
  }
  const app = { ...ICONS.compliant, colour: '#0a59b8' };
  writeFileSync(join(OUT, 'icon.png'), await render(svg(app, 512, false), 512));

  // Review sheet: each state at 16, 22 and 32 px, colour and template, on a light and a dark panel.
  const cell = (state, panel) => {
    const icon = ICONS[state];
    const fg = panel === 'dark' ? 'filter:invert(1)' : '';
    return `<div class="cell"><div>${[16, 22, 32].map((s) => svg(icon, s, false)).join(' ')}
      <span style="${fg}">${svg(icon, 16, true)} ${svg(icon, 32, true)}</span></div><div>${state}</div></div>`;
  };
  const panel = (name, bg, fg) =>
    `<div style="background:${bg};color:${fg};padding:12px;display:flex;gap:18px;font:12px sans-serif">${Object.keys(ICONS).map((s) => cell(s, name)).join('')}</div>`;
  await page.setViewportSize({ width: 900, height: 160 });
  await page.setContent(
    `<!doctype html><html><head><style>.cell{display:flex;flex-direction:column;align-items:center;gap:6px}svg{vertical-align:middle}</style></head>` +
      `<body style="margin:0">${panel('light', '#f0f0f0', '#222')}${panel('dark', '#202124', '#eee')}</body></html>`,
  );
  mkdirSync(join('docs', 'screenshots'), { recursive: true });
  await page.screenshot({ path: join('docs', 'screenshots', 'tray-icons.png'), fullPage: true });
} finally {
  await browser.close();
}
