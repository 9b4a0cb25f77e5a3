/**
 * @peculiar/x509 2.x resolves its algorithms through tsyringe, which refuses to load unless the Reflect
 * metadata API exists (it only stores and reads constructor parameter lists). The project has no
 * `reflect-metadata` dependency yet, so this installs the three functions tsyringe calls, only when no
 * polyfill is present. Import this module before '@peculiar/x509'. Replace with `import 'reflect-metadata'`
 * once that package is added.
 */
type MetadataMap = Map<unknown, unknown>;

const store = new WeakMap<object, MetadataMap>();

function own(target: object, create: boolean): MetadataMap | undefined {
  let m = store.get(target);
  if (!m && create) {
    m = new Map();
    store.set(target, m);
  }
  return m;
}

const api = {
  defineMetadata(key: unknown, value: unknown, target: object): void {
    own(target, true)?.set(key, value);
  },
  getOwnMetadata(key: unknown, target: object): unknown {
    return own(target, false)?.get(key);
  },
  getMetadata(key: unknown, target: object): unknown {
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
      const m = own(t, false);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  },
};

const reflect = Reflect as unknown as Record<string, unknown>;
if (typeof reflect.getMetadata !== 'function') Object.assign(reflect, api);
