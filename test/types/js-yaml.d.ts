// js-yaml ships no types; only `load` is used (to read docs/openapi.yaml in a test).
declare module 'js-yaml' {
  export function load(text: string): unknown;
}
