import type { JsonValue } from '../types.js';

export type PlistDict = { [key: string]: JsonValue };

const TOKEN = /<\?[\s\S]*?\?>|<!DOCTYPE[^>]*>|<!--[\s\S]*?-->|<(\/?)([A-Za-z][\w-]*)(?:\s[^>]*?)?\s*(\/?)>|([^<]+)/g;

type Token = { kind: 'open' | 'close' | 'empty'; name: string } | { kind: 'text'; text: string };

function tokenize(xml: string): Token[] {
  const tokens: Token[] = [];
  for (const m of xml.matchAll(TOKEN)) {
    const [, slash, name, selfClose, text] = m;
    if (name !== undefined) tokens.push({ kind: slash ? 'close' : selfClose ? 'empty' : 'open', name });
    else if (text !== undefined && text.trim() !== '') tokens.push({ kind: 'text', text });
  }
  return tokens;
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[e] ?? '';
  });
}

/**
 * Parses an XML property list (plutil -convert xml1, defaults export) into JSON values. Dates become ISO
 * strings and data becomes base64 text, which is why the probes emit XML: plutil's own JSON output refuses
 * plists that contain either. Throws on malformed input.
 */
export function parsePlistXml(xml: string): JsonValue {
  const tokens = tokenize(xml);
  let i = 0;
  const expectClose = (name: string): void => {
    const t = tokens[i++];
    if (t?.kind !== 'close' || t.name !== name) throw new Error(`plist: expected </${name}>`);
  };
  const textUntilClose = (name: string): string => {
    const t = tokens[i];
    let text = '';
    if (t?.kind === 'text') {
      text = decodeEntities(t.text);
      i++;
    }
    expectClose(name);
    return text;
  };
  const value = (): JsonValue => {
    const t = tokens[i++];
    if (!t || t.kind === 'text' || t.kind === 'close') throw new Error('plist: expected a value element');
    if (t.kind === 'empty') {
      if (t.name === 'true') return true;
      if (t.name === 'false') return false;
      if (t.name === 'string' || t.name === 'data') return '';
      if (t.name === 'dict') return {};
      if (t.name === 'array') return [];
      throw new Error(`plist: unexpected <${t.name}/>`);
    }
    switch (t.name) {
      case 'dict': {
        const out: PlistDict = {};
        while (tokens[i]?.kind !== 'close') {
          const k = tokens[i++];
          if (k?.kind !== 'open' || k.name !== 'key') throw new Error('plist: expected <key>');
          const key = textUntilClose('key');
          out[key] = value();
        }
        expectClose('dict');
        return out;
      }
      case 'array': {
        const out: JsonValue[] = [];
        while (tokens[i]?.kind !== 'close') out.push(value());
        expectClose('array');
        return out;
      }
      case 'string':
        return textUntilClose('string');
      case 'integer':
      case 'real': {
        const n = Number(textUntilClose(t.name).trim());
        if (!Number.isFinite(n)) throw new Error(`plist: bad <${t.name}>`);
        return n;
      }
      case 'date':
        return textUntilClose('date').trim();
      case 'data':
        return textUntilClose('data').replace(/\s+/g, '');
      case 'true':
      case 'false':
        expectClose(t.name);
        return t.name === 'true';
      default:
        throw new Error(`plist: unexpected <${t.name}>`);
    }
  };
  const first = tokens[i];
  if (first?.kind === 'open' && first.name === 'plist') {
    i++;
    const v = value();
    expectClose('plist');
    return v;
  }
  return value();
}

/** A plist's top-level dictionary, or undefined when the text is empty, malformed or not a dictionary. */
export function plistDict(xml: string | null | undefined): PlistDict | undefined {
  if (!xml) return undefined;
  try {
    const v = parsePlistXml(xml);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A boolean preference: plists store them as <true/>, or as integers 0/1 when written with `defaults -int`. */
export function prefBool(v: JsonValue | undefined): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string' && /^(1|0|true|false|yes|no)$/i.test(v)) return /^(1|true|yes)$/i.test(v);
  return undefined;
}

export function prefNumber(v: JsonValue | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v);
  return undefined;
}
