import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { z } from 'zod';
import type { Storage, StoredAdmin } from './storage.js';

/**
 * Admin console accounts: a name and a scrypt hash (N=2^15, r=8, p=1, 16-byte salt, 32-byte key), stored as
 * `scrypt$15$8$1$<salt>$<key>` (base64) so that stronger parameters can be introduced without a migration.
 */
const LOG_N = 15;
const R = 8;
const P = 1;
const KEY_BYTES = 32;
/** scrypt needs 128·N·r bytes (32 MiB here); Node refuses above 32 MiB unless told. */
const MAXMEM = 64 * 1024 * 1024;

export const adminNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a lower-case name of 1 to 64 letters, digits, dots, dashes or underscores, e.g. alice');

export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, opts, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_BYTES, { N: 2 ** LOG_N, r: R, p: P, maxmem: MAXMEM });
  return `scrypt$${LOG_N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): ParsedHash | null {
  const m = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m?.[4] || !m[5]) return null;
  return { N: 2 ** Number(m[1]), r: Number(m[2]), p: Number(m[3]), salt: Buffer.from(m[4], 'base64'), key: Buffer.from(m[5], 'base64') };
}

/**
 * Derived when the name is unknown (or its stored hash unreadable), so that this costs the same scrypt as a
 * wrong password and timing does not tell which names exist.
 */
const DUMMY: ParsedHash = { N: 2 ** LOG_N, r: R, p: P, salt: Buffer.alloc(16), key: Buffer.alloc(KEY_BYTES) };

/** Compares the derived key in constant time. */
export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  const real = stored === null ? null : parseHash(stored);
  const h = real ?? DUMMY;
  const key = await scrypt(password.slice(0, MAX_PASSWORD_LENGTH), h.salt, h.key.length, { N: h.N, r: h.r, p: h.p, maxmem: MAXMEM });
  return real !== null && timingSafeEqual(key, h.key);
}

/** A password chosen by an admin: long enough that the scrypt cost is not all that protects it. */
export function checkPassword(password: string): string {
  if (password.length < MIN_PASSWORD_LENGTH) throw new Error(`password: expected at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) throw new Error(`password: expected at most ${MAX_PASSWORD_LENGTH} characters`);
  return password;
}

/** 18 random bytes: 24 characters, 144 bits. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

export async function addAdmin(storage: Storage, name: string, password: string, now: number): Promise<void> {
  const n = adminNameSchema.parse(name);
  if (!(await storage.createAdmin({ name: n, passwordHash: await hashPassword(checkPassword(password)), createdAt: now }))) {
    throw new Error(`--name ${n}: an admin account with this name exists (use admin passwd to change its password)`);
  }
}

export async function setAdminPassword(storage: Storage, name: string, password: string): Promise<void> {
  if (!(await storage.setAdminPassword(name, await hashPassword(checkPassword(password))))) throw new Error(`--name ${name}: no such admin account`);
}

export function adminInfo(a: StoredAdmin): { name: string; createdAt: string; disabled: boolean } {
  return { name: a.name, createdAt: new Date(a.createdAt).toISOString(), disabled: a.disabled };
}

// ---- session cookie ----

/** `__Host-`: the browser accepts it only with Secure, Path=/ and no Domain, so no subdomain can set or widen it. */
export const SESSION_COOKIE = '__Host-vigil_session';
const SESSION_VALUE_RE = /^[A-Za-z0-9_-]{43}$/;

export function newSessionValue(): string {
  return randomBytes(32).toString('base64url');
}

export function sessionIdHash(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** The session cookie's value from a Cookie header, or null when absent or not the shape we issue. */
export function sessionCookieOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    return SESSION_VALUE_RE.test(value) ? value : null;
  }
  return null;
}

export function sessionSetCookie(value: string): string {
  return `${SESSION_COOKIE}=${value}; HttpOnly; Secure; SameSite=Strict; Path=/`;
}

export const SESSION_CLEAR_COOKIE = `${SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0`;
