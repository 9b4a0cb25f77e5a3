import { useEffect, useState } from 'preact/hooks';

/** Hash routes (`#/devices?level=blocked`): the server serves one index.html and needs no route table. */
export interface Route {
  path: string;
  params: URLSearchParams;
}

export function currentRoute(): Route {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  return q === -1 ? { path: raw, params: new URLSearchParams() } : { path: raw.slice(0, q), params: new URLSearchParams(raw.slice(q + 1)) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const on = (): void => {
      setRoute(currentRoute());
    };
    addEventListener('hashchange', on);
    return () => {
      removeEventListener('hashchange', on);
    };
  }, []);
  return route;
}

export function href(path: string, params?: Record<string, string | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return `#${path}${s === '' ? '' : `?${s}`}`;
}

export function navigate(path: string, params?: Record<string, string | null | undefined>): void {
  location.hash = href(path, params);
}
