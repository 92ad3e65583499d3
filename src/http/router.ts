/**
 * A small declarative router: a table of `{ method, pattern, handler }` rows, where a pattern is a
 * path such as `/jobs/:id/events` (`:name` matches one non-empty segment; a trailing slash is
 * optional). Rows with the same pattern form one resource; its methods, in table order, are the
 * `Allow` of a 405. HEAD is answered by the GET row unless a HEAD row exists.
 */

export interface RouteDefinition<H> {
  method: string;
  pattern: string;
  handler: H;
}

/** What a request resolves to. Params are percent-decoded. */
export type Resolution<H> =
  | { kind: 'found'; handler: H; params: Record<string, string> }
  | { kind: 'not_found' }
  | { kind: 'method_not_allowed'; allow: string[] }
  /** A path parameter whose percent-encoding is malformed (`%ZZ`, a lone `%`). */
  | { kind: 'bad_param'; param: string };

interface Resource<H> {
  regex: RegExp;
  names: string[];
  methods: Map<string, H>;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function compile(pattern: string): { regex: RegExp; names: string[] } {
  if (!pattern.startsWith('/')) throw new TypeError(`route pattern ${JSON.stringify(pattern)}: expected a path starting with /`);
  const names: string[] = [];
  const source = pattern
    .replace(/\/+$/, '')
    .split('/')
    .map((segment) => {
      if (!segment.startsWith(':')) return escapeRegExp(segment);
      names.push(segment.slice(1));
      return '([^/]+)';
    })
    .join('/');
  return { regex: new RegExp(`^${source}/?$`), names };
}

/** Decodes a path segment; null when its percent-encoding is malformed. */
function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Compiles a route table into a `resolve(method, path)` function. */
export function createRouter<H>(routes: ReadonlyArray<RouteDefinition<H>>): (method: string, path: string) => Resolution<H> {
  const resources: Array<Resource<H>> = [];
  for (const route of routes) {
    const method = route.method.toUpperCase();
    const { regex, names } = compile(route.pattern);
    let resource = resources.find((r) => r.regex.source === regex.source);
    if (resource !== undefined && resource.names.join() !== names.join()) {
      throw new TypeError(`route ${method} ${route.pattern}: expected the parameter names of the other rows of this path (${resource.names.join(', ')})`);
    }
    if (resource === undefined) {
      resource = { regex, names, methods: new Map() };
      resources.push(resource);
    }
    if (resource.methods.has(method)) throw new TypeError(`route ${method} ${route.pattern} is defined twice`);
    resource.methods.set(method, route.handler);
  }

  return (rawMethod, path) => {
    const method = rawMethod.toUpperCase();
    for (const resource of resources) {
      const match = resource.regex.exec(path);
      if (match === null) continue;
      const handler = resource.methods.get(method) ?? (method === 'HEAD' ? resource.methods.get('GET') : undefined);
      if (handler === undefined) return { kind: 'method_not_allowed', allow: [...resource.methods.keys()] };
      const params: Record<string, string> = {};
      for (const [index, name] of resource.names.entries()) {
        const value = decodeSegment(match[index + 1]!);
        if (value === null) return { kind: 'bad_param', param: name };
        params[name] = value;
      }
      return { kind: 'found', handler, params };
    }
    return { kind: 'not_found' };
  };
}
