import { Worker, type WorkerOptions } from 'node:worker_threads';

const fromSource = import.meta.url.endsWith('.ts');

/**
 * A worker thread running the module `name` of this directory. Run from TypeScript source (the tests), the
 * worker has no loader for .ts, so it registers tsx itself before importing the module.
 */
export function spawnWorker(name: string, options: WorkerOptions = {}): Worker {
  if (!fromSource) return new Worker(new URL(`./${name}.js`, import.meta.url), options);
  const href = new URL(`./${name}.ts`, import.meta.url).href;
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(href)}); });`, {
    ...options,
    eval: true,
  });
}
