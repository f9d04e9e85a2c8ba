import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { parse } from 'yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApiDocsRouter } from '../../src/api/docs-routes.js';
import { PROBLEMS } from '../../src/api/problem.js';
import {
  HTTP_METHODS,
  OPENAPI_PATH,
  PROBLEM_TYPE_PREFIX,
  dereference,
  pointerToken,
  resolvePointer,
  type OpenApiDocument,
  type ParameterObject,
  type ResponseObject,
} from '../../src/api/openapi-document.js';
import { createErrorHandler } from '../../src/http/error-pages.js';
import { createViewEngine } from '../../src/http/view-engine.js';
import { createLogger } from '../../src/logger.js';
import { VIEWS_DIR } from '../../src/paths.js';
import { SITE_NAME } from '../../src/site.js';
import { apiDocument, createContractAjv, validatorAt } from '../helpers/api-contract.js';
import { PRODUCTION_ENV, createTestApp, type TestApp } from '../helpers/create-test-app.js';
import { expectPage, visibleText } from '../helpers/expectations.js';

/** The operations of the team's design (issue 13), each by method and path. */
const DESIGNED_OPERATIONS = [
  'POST /api/v1/verifications',
  'GET /api/v1/verifications/{id}',
  'DELETE /api/v1/verifications/{id}',
  'POST /api/v1/verifications/{id}/check',
  'POST /request-auth',
  'POST /validate-auth',
  // A GET is refused with 405 (a code in a URL ends up in logs): documented so its answer is too.
  'GET /request-auth',
  'GET /validate-auth',
];

/** The design's problem types, each with its status. */
const DESIGNED_PROBLEMS: Record<string, number> = {
  'malformed-body': 400,
  unauthorized: 401,
  'key-revoked': 403,
  'channel-not-allowed': 403,
  'code-rejected': 403,
  'not-found': 404,
  'method-not-allowed': 405,
  'verification-closed': 409,
  'idempotency-in-progress': 409,
  'check-in-progress': 409,
  'invalid-request': 422,
  'idempotency-key-reused': 422,
  'destination-refused': 422,
  'too-many-requests': 429,
  unavailable: 503,
  internal: 500,
};

function operationsOf(document: OpenApiDocument) {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    HTTP_METHODS.filter((method) => item[method]).map((method) => ({
      method,
      path,
      operation: item[method]!,
      name: `${method.toUpperCase()} ${path}`,
    })),
  );
}

/** Every place in the document that holds a value of `key`, with its JSON pointer. */
function findAll(value: unknown, key: string, pointer = '#'): { pointer: string; value: unknown }[] {
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([name, child]) => [
    ...(name === key ? [{ pointer, value: child }] : []),
    ...findAll(child, key, `${pointer}/${pointerToken(name)}`),
  ]);
}

/** The pointer of every schema the document gives: components, parameters, headers, bodies. */
function schemaPointers(document: OpenApiDocument): string[] {
  return findAll(document, 'schema')
    .map(({ pointer }) => `${pointer}/schema`)
    .concat(Object.keys(document.components.schemas).map((name) => `#/components/schemas/${name}`));
}

describe('openapi.yaml', () => {
  it('is OpenAPI 3.1 with every operation of the design, each with a unique operationId, and no other', () => {
    const document = parse(readFileSync(OPENAPI_PATH, 'utf8')) as OpenApiDocument;
    expect(document.openapi).toMatch(/^3\.1\.\d+$/);
    const operations = operationsOf(document);
    expect(operations.map(({ name }) => name).sort()).toEqual([...DESIGNED_OPERATIONS].sort());
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
  });

  it('guards every operation with the bearer key', () => {
    expect(apiDocument.components.securitySchemes).toEqual({
      apiKey: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
    expect((apiDocument as unknown as { security: unknown }).security).toEqual([{ apiKey: [] }]);
    for (const { operation } of operationsOf(apiDocument)) {
      expect((operation as { security?: unknown }).security).toBeUndefined();
      expect(Object.keys(operation.responses)).toContain('401');
    }
  });

  it('resolves every $ref', () => {
    const refs = findAll(apiDocument, '$ref');
    expect(refs.length).toBeGreaterThan(50);
    for (const { pointer, value } of refs) {
      expect(typeof value, pointer).toBe('string');
      expect(
        () => resolvePointer(apiDocument, value as string),
        `${pointer}: ${String(value)}`,
      ).not.toThrow();
    }
  });

  it('compiles every schema under ajv 2020 in strict mode', () => {
    const ajv = createContractAjv();
    const pointers = schemaPointers(apiDocument);
    expect(pointers.length).toBeGreaterThan(50);
    for (const pointer of pointers) {
      expect(
        () => ajv.compile({ $ref: `https://keyhole.invalid/openapi.yaml${pointer}` }),
        pointer,
      ).not.toThrow();
    }
  });

  it('gives examples that pass their own schemas, with fictional numbers only', () => {
    const examples = findAll(apiDocument, 'example').filter(({ pointer }) => !pointer.includes('/schema'));
    expect(examples.length).toBeGreaterThan(20);
    for (const { pointer, value } of examples) {
      const validate = validatorAt(`${pointer}/schema`);
      expect(validate(value), `${pointer}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    // And the examples each named schema gives of its values.
    for (const [name, schema] of Object.entries(apiDocument.components.schemas)) {
      const validate = validatorAt(`#/components/schemas/${name}`);
      for (const example of (schema.examples ?? []) as unknown[]) {
        expect(validate(example), `${name}: ${JSON.stringify(example)}`).toBe(true);
      }
    }
    // Phone numbers in the document (examples, curl) are all in the range kept for fiction.
    const text = readFileSync(OPENAPI_PATH, 'utf8');
    const numbers = text.match(/\+1\d{10}/g) ?? [];
    expect(numbers.length).toBeGreaterThan(5);
    for (const number of numbers) expect(number).toMatch(/^\+1202555010\d$|^\+120255501[1-9]\d$/);
  });

  it('gives each problem type the status and title the code sends (src/api/problem.ts)', () => {
    const documented = apiDocument['x-problem-types'].map(({ slug, status, title }) => ({
      slug,
      status,
      title,
    }));
    const sent = Object.entries(PROBLEMS).map(([slug, { status, title }]) => ({ slug, status, title }));
    const bySlug = (a: { slug: string }, b: { slug: string }) => a.slug.localeCompare(b.slug);
    expect(documented.sort(bySlug)).toEqual(sent.sort(bySlug));
  });

  it('lists each problem type of the design once, with its status, and every problem answer names only these', () => {
    const listed = apiDocument['x-problem-types'];
    expect(Object.fromEntries(listed.map(({ slug, status }) => [slug, status]))).toEqual(DESIGNED_PROBLEMS);
    expect(new Set(listed.map(({ slug }) => slug)).size).toBe(listed.length);
    expect(new Set(listed.map(({ title }) => title)).size).toBe(listed.length);

    const used = new Set<string>();
    for (const { name, operation } of operationsOf(apiDocument)) {
      for (const [status, raw] of Object.entries(operation.responses)) {
        const response = dereference<ResponseObject>(apiDocument, raw);
        const problem = response.content?.['application/problem+json'];
        if (Number(status) >= 400) expect(problem, `${name} ${status}`).toBeDefined();
        const narrowing = problem?.schema?.allOf?.[1]?.properties;
        for (const type of (narrowing?.type?.enum ?? []) as string[]) {
          const slug = type.slice(PROBLEM_TYPE_PREFIX.length);
          expect(DESIGNED_PROBLEMS[slug], `${name} ${status}: ${type}`).toBe(Number(status));
          expect(narrowing?.status?.const).toBe(Number(status));
          used.add(slug);
        }
      }
    }
    // not-found and method-not-allowed also answer outside these operations (unknown paths, other methods).
    expect([...used].sort()).toEqual(Object.keys(DESIGNED_PROBLEMS).sort());
  });

  it('keeps the verification status of a 409 out of RFC 9457 `status`, in verificationStatus', () => {
    const problem = apiDocument.components.schemas.Problem!;
    expect(problem.properties?.status?.type).toBe('integer');
    expect(problem.properties?.verificationStatus).toBeDefined();
    expect(problem.additionalProperties).toBe(false);
  });

  it('documents the Idempotency-Key header and the path id as parameters', () => {
    const create = apiDocument.paths['/api/v1/verifications']!.post!;
    const [idempotency] = (create.parameters ?? []).map((parameter) =>
      dereference<ParameterObject>(apiDocument, parameter),
    );
    expect(idempotency).toMatchObject({ name: 'Idempotency-Key', in: 'header', required: false });
    const header = validatorAt('#/components/parameters/IdempotencyKey/schema');
    expect(header('order-4711-code')).toBe(true);
    expect(header('')).toBe(false);
    expect(header('x'.repeat(256))).toBe(false);
    expect(header('naïve')).toBe(false);
  });
});

describe('GET /api/openapi.yaml and /api/docs', () => {
  let site: TestApp;
  let production: TestApp;
  beforeAll(async () => {
    site = await createTestApp();
    production = await createTestApp({ env: PRODUCTION_ENV });
  });
  afterAll(async () => {
    await site.close();
    await production.close();
  });

  it('serves openapi.yaml as it is on disk, as YAML, without a cookie', async () => {
    const res = await request(site.app).get('/api/openapi.yaml');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/yaml; charset=utf-8');
    expect(res.text).toBe(readFileSync(OPENAPI_PATH, 'utf8'));
    expect((parse(res.text) as OpenApiDocument).openapi).toMatch(/^3\.1\./);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('lets production caches keep the file a day, and answers 304 to a browser that has it', async () => {
    const res = await request(production.app).get('/api/openapi.yaml');
    expect(res.headers['cache-control']).toBe('public, max-age=86400');
    const etag = res.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await request(production.app).get('/api/openapi.yaml').set('If-None-Match', etag);
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    // Outside production a changed file shows at once.
    expect((await request(site.app).get('/api/openapi.yaml')).headers['cache-control']).toBe('no-cache');
  });

  it('shows every operation with its method, path, anchor, operation id and a curl example', async () => {
    const res = await request(site.app).get('/api/docs');
    expectPage(res, 200, /Keyhole verification API/);
    for (const { method, path, operation } of operationsOf(apiDocument)) {
      expect(res.text).toContain(`id="op-${operation.operationId}"`);
      expect(res.text).toContain(`data-operation-id="${operation.operationId}"`);
      expect(res.text).toMatch(
        new RegExp(
          `>${method.toUpperCase()}</span> <code class="api-path">${path.replace(/[{}]/g, '\\$&')}</code>`,
        ),
      );
    }
    // EJS writes a double quote as &#34;.
    const text = visibleText(res.text).replace(/&#34;/g, '"');
    for (const sample of [
      '-X DELETE',
      '--data-urlencode "auth_code=123456"',
      '-H "Idempotency-Key: order-4711-code"',
    ]) {
      expect(text).toContain(sample);
    }
    // Request fields and response fields, in tables with headers.
    expect(res.text).toContain('<caption>Body fields (CreateVerificationRequest)</caption>');
    expect(res.text).toContain('<caption>Fields of the 200 answer (Verification)</caption>');
    expect(res.text).toMatch(/<th scope="row" data-label="Name"><code>verificationStatus<\/code><\/th>/);
  });

  it('lists every problem type under its anchor, and each problem a response names links there', async () => {
    const res = await request(site.app).get('/api/docs');
    for (const { slug, title } of apiDocument['x-problem-types']) {
      expect(res.text).toContain(`id="problem-${slug}"`);
      expect(res.text).toContain(title);
    }
    const links = [...res.text.matchAll(/href="#([^"]+)"/g)].map((match) => match[1]!);
    expect(links.filter((anchor) => anchor.startsWith('problem-')).length).toBeGreaterThan(40);
    for (const anchor of new Set(links)) expect(res.text, anchor).toContain(`id="${anchor}"`);
  });

  it('escapes what the document says (no HTML from it reaches the page)', async () => {
    const res = await request(site.app).get('/api/docs');
    // The security scheme's description reads "Bearer <key>".
    expect(res.text).toContain('Bearer &lt;key&gt;');
    expect(res.text).not.toContain('<key>');
  });

  it('carries the site security headers, no inline script or style, and sets no cookie', async () => {
    const res = await request(production.app).get('/api/docs');
    expectPage(res, 200);
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=/);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.text).not.toMatch(/<script(?![^>]*\ssrc=)/);
    expect(res.text).not.toMatch(/\sstyle=/);
    expect(res.text).not.toMatch(/\son[a-z]+=/);
    expect(res.text).not.toMatch(/https?:\/\/(?!keyhole\.example)[a-z]/);
    expect(res.headers['cache-control']).toBe('public, max-age=3600');
  });

  it('needs no session and no key: the same page for a visitor without cookies', async () => {
    const res = await request(site.app).get('/api/docs').set('Authorization', 'Bearer kh_test_not-a-key');
    expectPage(res, 200, /Problem types/);
    expect(res.headers['set-cookie']).toBeUndefined();
    // Signed-in parts of the layout (the logout form and its token) are not on it.
    expect(res.text).not.toContain('name="_csrf"');
  });
});

describe('createApiDocsRouter', () => {
  const NOT_OPENAPI_31 = 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\npaths: {}\n';
  let folder: string;
  let documentPath: string;
  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'openapi-'));
    documentPath = join(folder, 'openapi.yaml');
  });
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  /** The docs router with the site's own error pages and a log the test reads. */
  function createDocsApp({ isProduction, now }: { isProduction: boolean; now?: () => number }) {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(line) });
    const app = express();
    app.engine('ejs', createViewEngine({ root: VIEWS_DIR, keepCompiled: false }));
    app.set('view engine', 'ejs');
    app.set('views', VIEWS_DIR);
    app.locals.siteName = SITE_NAME;
    app.locals.isProduction = isProduction;
    app.use(createApiDocsRouter({ isProduction, logger, documentPath, readRetryMs: 60_000, now }));
    app.get('/other', (_req, res) => res.send('still here'));
    app.use(createErrorHandler(logger));
    const errorLines = () =>
      lines.map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message: string } });
    return { app, logged: () => errorLines().filter((line) => line.level >= 50) };
  }

  /** The 500 page a visitor gets for a broken document: a plain sentence, none of its details. */
  function expectBrokenReferencePage(res: request.Response) {
    expectPage(res, 500, /The API reference cannot be shown right now/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).not.toContain(documentPath);
    expect(res.text).not.toMatch(/openapi must be|ENOENT|YAMLParseError|\sat\s.*\.(ts|js):\d+/);
    // Trying again does not help here; the rest of the site is fine.
    expect(visibleText(res.text)).toContain('Every other page of the site works as usual.');
    expect(res.text).not.toContain('trying again usually works');
  }

  it('fails only its own pages on a document that is not OpenAPI 3.1, naming the file in the log', async () => {
    writeFileSync(documentPath, NOT_OPENAPI_31);
    // Read at the first request, not at start: creating the router does not touch the file.
    const { app, logged } = createDocsApp({ isProduction: false });
    expectBrokenReferencePage(await request(app).get('/api/docs'));
    expectBrokenReferencePage(await request(app).get('/api/openapi.yaml'));
    expect((await request(app).get('/other')).text).toBe('still here');
    expect(logged()[0]?.err?.message.startsWith(`${documentPath}: openapi must be 3.1.x`)).toBe(true);
  });

  describe.each([
    ['is not YAML', 'openapi: [3.1.0\n'],
    ['is not OpenAPI 3.1', NOT_OPENAPI_31],
  ])('in production, when the document %s', (_case, broken) => {
    // Threat: anyone making the server read and parse a file, and write a log line, at every
    // request, by asking for a page that is broken until the next release.
    it('is read once: later requests get the same 500 page, one line is logged, a later fix waits for a restart', async () => {
      writeFileSync(documentPath, broken);
      const { app, logged } = createDocsApp({ isProduction: true });
      for (let i = 0; i < 5; i += 1) {
        expectBrokenReferencePage(await request(app).get('/api/docs'));
        expectBrokenReferencePage(await request(app).get('/api/openapi.yaml'));
      }
      expect(logged()).toHaveLength(1);
      expect(logged()[0]?.msg).toMatch(/API reference cannot be read/);

      // Not read again: the file as a release would fix it is only seen by a new process.
      writeFileSync(documentPath, readFileSync(OPENAPI_PATH));
      expectBrokenReferencePage(await request(app).get('/api/docs'));
      expect(logged()).toHaveLength(1);
      expect((await request(createDocsApp({ isProduction: true }).app).get('/api/docs')).status).toBe(200);
    });
  });

  it('in production, tries a file it could not read at all again a minute later, but never a text it could not parse', async () => {
    // The system's refusal (a missing file, too many open files) may pass; a bad text will not.
    let clock = 0;
    const now = () => clock;
    const { app, logged } = createDocsApp({ isProduction: true, now });
    expectBrokenReferencePage(await request(app).get('/api/docs'));
    writeFileSync(documentPath, readFileSync(OPENAPI_PATH));
    clock += 59_999;
    expectBrokenReferencePage(await request(app).get('/api/docs'));
    clock += 1;
    expectPage(await request(app).get('/api/docs'), 200, /Problem types/);
    expect(logged()).toHaveLength(1);
    expect(logged()[0]?.msg).toMatch(/tried again in a minute/);

    writeFileSync(documentPath, NOT_OPENAPI_31);
    const parsed = createDocsApp({ isProduction: true, now });
    expectBrokenReferencePage(await request(parsed.app).get('/api/docs'));
    writeFileSync(documentPath, readFileSync(OPENAPI_PATH));
    clock += 24 * 60 * 60_000;
    expectBrokenReferencePage(await request(parsed.app).get('/api/docs'));
    expect(parsed.logged()).toHaveLength(1);
    expect(parsed.logged()[0]?.msg).toMatch(/until a fixed document is deployed/);
  });

  it('in development, reads a broken document again at the next request, so a fix shows without a restart', async () => {
    writeFileSync(documentPath, NOT_OPENAPI_31);
    const { app } = createDocsApp({ isProduction: false });
    expectBrokenReferencePage(await request(app).get('/api/docs'));
    writeFileSync(documentPath, readFileSync(OPENAPI_PATH));
    expectPage(await request(app).get('/api/docs'), 200, /Problem types/);
    expect((await request(app).get('/api/openapi.yaml')).text).toBe(readFileSync(OPENAPI_PATH, 'utf8'));
  });
});
