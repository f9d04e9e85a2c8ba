import type { RequestHandler, Router } from 'express';

/**
 * A router behind a gate: a request whose path no layer of the router can match goes straight on
 * to the next middleware, at the cost of one Set lookup, instead of being tried against each layer.
 */
export interface PathGate extends RequestHandler {
  /** The router behind the gate, for tests and tools that walk the app's routes. */
  readonly router: Router;
  /**
   * The lower-case first path segments the router's layers can match ('' for the root), read from
   * its stack as it is now; undefined when the router is never gated (see reachableByPath).
   */
  firstSegments(): ReadonlySet<string> | undefined;
}

/** What a layer of router 2.x keeps that the gate reads (node_modules/router/lib/layer.js). */
interface LayerShape {
  /** The path as given to use/route/get, arrays flattened; a string or a RegExp. */
  rawPath?: unknown;
  /** Set on the layer of router.route(path) (and router.get(path) ...); undefined on router.use(...). */
  route?: unknown;
  /** True for a router.use(fn) with no path (or '/'): it runs for every request. */
  slash?: boolean;
}

const SLASH = 0x2f;
// The literal text of a pattern's first segment, up to the first '/' or path-to-regexp v8 syntax
// ({ } ( ) [ ] + ? ! : * \ and the quotes of a quoted parameter name), then whatever follows.
const FIRST_SEGMENT = /^\/([^/{}()[\]+?!:*\\"]*)([^]*)$/;
const NON_ASCII = /[^\u0000-\u007f]/;

/**
 * Wraps a router so that a request whose path cannot reach any of its layers skips it. Express
 * tries every layer of every router mounted with app.use(router) on every request; with twenty
 * routers in app.ts most of that work is for routers the path was never meant for (issue 10).
 *
 * What the router answers is read from its own stack, never from a list kept by hand, and read
 * again whenever the stack grows, so a route added later is reached without anyone touching this.
 *
 * Why it is safe (it lets through a superset of what the router matches):
 * - Layers match the pathname (parseurl, the same req.path read here) without decoding it first, so
 *   '/%61ccount' is not '/account' to the router either; '//account' has '' as its first segment,
 *   and '/account;x' has 'account;x'. A layer whose path is a literal first segment can only match
 *   a pathname whose own first segment (up to the next '/') is that text.
 * - Every comparison is in lower case, whatever the router's `caseSensitive` ('case sensitive
 *   routing' is an app setting that routers made with Router() do not take): a case-sensitive match
 *   is also a lower-case one. Strict routing and trailing slashes only change what comes after the
 *   first segment. Only ASCII first segments are gated, and a request whose first segment has any
 *   other character is always let through: whether a case-insensitive match pairs such a character
 *   with an ASCII letter (the Kelvin sign and k) is not a question the gate needs to answer.
 * - A router is never gated (every request enters it, as without the gate) when any of its layers
 *   has no path (a router.use(fn), which may be a guard), a use at the root, a RegExp path, a path
 *   that does not start with '/', or a first segment that is not plain text: '/:id', '/*splat',
 *   '/item-:id', '/item{s}', '{/:lang}/about', an escaped character. '/verify{/:stage}' is gated
 *   by 'verify': with or without its group, what follows the segment is a '/' or the end.
 * - The method plays no part: HEAD and OPTIONS pass where GET does. For a path none of its layers
 *   matches, the router would have answered nothing (its automatic OPTIONS answer lists the methods
 *   of the routes whose path matched), run no router.param handler and passed no error on, since
 *   a router mounted by app.use only ever sees requests without one, with or without the gate.
 * - Nested routers are reached through their mount path, which is a layer like any other.
 */
export function reachableByPath(router: Router): PathGate {
  let readStack: unknown;
  let readLength = -1;
  let segments: ReadonlySet<string> | undefined;

  // The stack is read again when it is replaced or grows. Express only ever appends to it; code that
  // swapped a layer in place (stack[i] = layer) would not be seen, so none may.
  const firstSegments = () => {
    const stack = router.stack as unknown;
    if (stack !== readStack || !Array.isArray(stack) || stack.length !== readLength) {
      readStack = stack;
      readLength = Array.isArray(stack) ? stack.length : -1;
      segments = Array.isArray(stack) ? firstSegmentsOfLayers(stack as LayerShape[]) : undefined;
    }
    return segments;
  };

  const gate: RequestHandler = (req, res, next) => {
    const reachable = firstSegments();
    if (reachable) {
      const segment = firstSegmentOfPathname(req.path);
      if (segment !== undefined && !reachable.has(segment)) {
        next();
        return;
      }
    }
    router(req, res, next);
  };
  return Object.assign(gate, { router, firstSegments });
}

/**
 * The lower-case first segment of a request's pathname, or undefined when it has none to judge by
 * (no pathname, as when req.url cannot be parsed, or one that does not start with '/', such as the
 * '*' of OPTIONS *) or has a character outside ASCII: the router then decides, as it would without
 * the gate. Checked before lower-casing, which turns some of them into ASCII (the Kelvin sign into k).
 */
function firstSegmentOfPathname(pathname: string | undefined): string | undefined {
  if (typeof pathname !== 'string' || pathname.charCodeAt(0) !== SLASH) return undefined;
  const end = pathname.indexOf('/', 1);
  const segment = end === -1 ? pathname.slice(1) : pathname.slice(1, end);
  return NON_ASCII.test(segment) ? undefined : segment.toLowerCase();
}

/** Every first segment the layers can match, or undefined when one of them might match any. */
function firstSegmentsOfLayers(stack: readonly LayerShape[]): Set<string> | undefined {
  const segments = new Set<string>();
  for (const layer of stack) {
    if (layer.slash) return undefined;
    const patterns = Array.isArray(layer.rawPath) ? layer.rawPath : [layer.rawPath];
    for (const pattern of patterns) {
      const segment = literalFirstSegment(pattern);
      if (segment === undefined) return undefined;
      // A router.use at the root ('/', '//x'): treat it as running for every request.
      if (segment === '' && !layer.route) return undefined;
      segments.add(segment);
    }
  }
  return segments;
}

/** The lower-case literal first segment of every path a pattern matches, or undefined. */
function literalFirstSegment(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string') return undefined;
  const match = FIRST_SEGMENT.exec(pattern);
  if (!match) return undefined;
  const [, segment = '', rest = ''] = match;
  if (NON_ASCII.test(segment) || !continuesWithSlashOrEnds(rest)) return undefined;
  return segment.toLowerCase();
}

/**
 * Whether every path this rest of a pattern stands for starts with '/' or is empty. path-to-regexp
 * matches a pattern with each optional {group} either there or not, so '{/:stage}' qualifies, and
 * so does '{s}/x' only if 's/x' and '/x' both do (the first does not).
 */
function continuesWithSlashOrEnds(rest: string): boolean {
  if (rest === '' || rest.charCodeAt(0) === SLASH) return true;
  if (rest[0] !== '{') return false;
  let depth = 0;
  for (let i = 0; i < rest.length; i += 1) {
    const char = rest[i];
    // An escaped or quoted brace would need path-to-regexp's own parser: not gated.
    if (char === '\\' || char === '"') return false;
    if (char === '{') depth += 1;
    if (char === '}') depth -= 1;
    if (depth === 0) {
      const group = rest.slice(1, i);
      const after = rest.slice(i + 1);
      return continuesWithSlashOrEnds(group + after) && continuesWithSlashOrEnds(after);
    }
  }
  return false;
}
