import express, { type Router } from 'express';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PathGate } from '../src/http/reachable-by-path.js';
import { csrfTokenIn } from './helpers/agent.js';
import { createTestApp, type TestApp } from './helpers/create-test-app.js';

/** SignalWire named too, so that its voice router is mounted and walked with the others. */
const SIGNALWIRE_ENV: Record<string, string> = {
  MFA_PROVIDER: 'console,signalwire',
  SIGNALWIRE_PROJECT: 'project',
  SIGNALWIRE_TOKEN: 'PT-token',
  SIGNALWIRE_NUMBER: '+12025550100',
  SIGNALWIRE_BASE_URL: 'http://127.0.0.1:9',
  BASE_CALLBACK_URL: 'https://keyhole.example',
};

interface RouteLayer {
  rawPath: unknown;
  route?: { methods: Record<string, boolean> };
}

interface MountedRouter {
  name: string;
  router: Router;
  gate?: PathGate;
}

const isPathGate = (handle: unknown): handle is PathGate =>
  typeof handle === 'function' && 'firstSegments' in handle && 'router' in handle;
const isRouter = (handle: unknown): handle is Router =>
  typeof handle === 'function' && Array.isArray((handle as { stack?: unknown }).stack);

/** Every router app.ts mounts, in order, behind its gate or not. */
function mountedRouters(app: express.Express): MountedRouter[] {
  const layers = (app.router as unknown as { stack: { handle: unknown }[] }).stack;
  return layers.flatMap(({ handle }, index): MountedRouter[] => {
    if (isPathGate(handle)) return [{ name: `router #${index}`, router: handle.router, gate: handle }];
    if (isRouter(handle)) return [{ name: `router #${index}`, router: handle }];
    return [];
  });
}

/**
 * Each path a router's layers match, params filled in, with the methods its routes answer (GET for
 * a router.use with a path); `isRoute` tells a route from a middleware.
 */
function pathsOf(router: Router): { method: string; path: string; isRoute: boolean }[] {
  const layers = router.stack as unknown as RouteLayer[];
  return layers.flatMap((layer) => {
    const patterns = (Array.isArray(layer.rawPath) ? layer.rawPath : [layer.rawPath]).filter(
      (pattern): pattern is string => typeof pattern === 'string',
    );
    const methods = layer.route
      ? Object.keys(layer.route.methods).filter((method) => method !== '_all')
      : ['get'];
    return patterns.flatMap((pattern) =>
      (methods.length ? methods : ['get']).map((method) => ({
        method,
        path: fillParams(pattern),
        isRoute: Boolean(layer.route),
      })),
    );
  });
}

/** '/admin/accounts/:id' becomes '/admin/accounts/sample-id'; an optional {group} is kept. */
function fillParams(pattern: string): string {
  return pattern
    .replace(/[{}]/g, '')
    .replace(/:(\w+)/g, 'sample-$1')
    .replace(/\*(\w+)/g, 'a/b');
}

describe('the routers app.ts mounts', () => {
  let site: TestApp;
  beforeEach(async () => {
    site = await createTestApp({ env: SIGNALWIRE_ENV });
  });
  afterEach(() => site.close());

  it('are all mounted behind a gate, and each gate knows the first segments it lets through', () => {
    const routers = mountedRouters(site.app);
    expect(routers.length).toBeGreaterThanOrEqual(20);
    for (const { name, gate, router } of routers) {
      expect(gate, `${name} (${pathsOf(router)[0]?.path}) is mounted bare`).toBeDefined();
      // A router.use(fn) with no path, a RegExp or '/:id' route would make a gate let everything in.
      expect(gate!.firstSegments(), `${name} (${pathsOf(router)[0]?.path}) is never gated`).toBeDefined();
    }
  });

  it('let every path of every route and middleware through their gate, in any case and with a trailing slash', async () => {
    for (const { gate, router } of mountedRouters(site.app)) {
      if (!gate) continue;
      // The router itself answers for the probe: whether the gate let the request in is the question.
      const entered: string[] = [];
      const probe = express();
      probe.use(gate);
      probe.use((_req, res) => {
        res.status(404).end();
      });
      (router as unknown as { handle: express.RequestHandler }).handle = (req, res) => {
        entered.push(`${req.method} ${req.url}`);
        res.status(204).end();
      };
      for (const { method, path } of pathsOf(router)) {
        for (const variant of [path, path.toUpperCase(), `${path.replace(/\/$/, '')}/`]) {
          const res = await request(probe)[method as 'get'](variant);
          expect(res.status, `${method.toUpperCase()} ${variant} did not reach its router`).toBe(204);
        }
      }
      expect(entered.length).toBeGreaterThan(0);
    }
  });

  it('still answer each of their routes through the whole app (none falls to the 404 page)', async () => {
    const agent = request.agent(site.app);
    const routes = mountedRouters(site.app).flatMap(({ router }) =>
      pathsOf(router).filter(({ isRoute }) => isRoute),
    );
    for (const { method, path } of routes) {
      const label = `${method.toUpperCase()} ${path}`;
      let res;
      if (method === 'get' || method === 'head') {
        res = await agent[method](path);
      } else {
        // A fresh form token each time: a POST that ends the pre-session (logout) voids the last one.
        const csrf = csrfTokenIn((await agent.get('/login')).text);
        res = await agent[method as 'post'](path).type('form').send({ _csrf: csrf });
        expect(res.text, `${label} was stopped by the CSRF check, before any router`).not.toContain(
          'This form was out of date',
        );
      }
      expect(res.text, `${label} fell to the 404 page`).not.toContain('There is no page at this address.');
    }
    expect(routes.map(({ method, path }) => `${method} ${path}`)).toEqual(
      expect.arrayContaining([
        'get /account',
        'post /verify',
        'get /admin',
        'get /callbacks/signalwire/voice/sample-id',
      ]),
    );
  });
});
