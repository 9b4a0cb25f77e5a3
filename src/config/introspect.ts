import { z } from 'zod';

export type LeafKind = 'string' | 'number' | 'boolean' | 'enum' | 'json';

export interface Leaf {
  path: string[];
  kind: LeafKind;
  /** Allowed values of an enum leaf. */
  values?: readonly string[];
  description?: string;
}

/** Peels defaults, optionals and the like off a schema to reach the type a value must have. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let cur: z.ZodType = schema;
  for (;;) {
    if (cur instanceof z.ZodDefault || cur instanceof z.ZodPrefault || cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) {
      cur = cur.unwrap() as z.ZodType;
    } else {
      return cur;
    }
  }
}

/** Every settable key of an object schema, with its type: drives env mapping, `config show` and MDM templates. */
export function leaves(schema: z.ZodType, prefix: string[] = []): Leaf[] {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([k, v]) => leaves(v, [...prefix, k]));
  }
  const description = schema.description ?? inner.description;
  const base = description === undefined ? {} : { description };
  if (inner instanceof z.ZodString) return [{ path: prefix, kind: 'string', ...base }];
  if (inner instanceof z.ZodNumber) return [{ path: prefix, kind: 'number', ...base }];
  if (inner instanceof z.ZodBoolean) return [{ path: prefix, kind: 'boolean', ...base }];
  if (inner instanceof z.ZodEnum) return [{ path: prefix, kind: 'enum', values: inner.options.map(String), ...base }];
  return [{ path: prefix, kind: 'json', ...base }];
}

/** Keys allowed in the object at `path`, for "did you mean" hints. */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let cur = unwrap(schema);
  for (const key of path) {
    if (!(cur instanceof z.ZodObject)) return [];
    const next = (cur.shape as Record<string, z.ZodType | undefined>)[String(key)];
    if (!next) return [];
    cur = unwrap(next);
  }
  return cur instanceof z.ZodObject ? Object.keys(cur.shape) : [];
}
