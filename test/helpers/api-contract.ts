// The named export: under NodeNext the default import of this CommonJS module types as its namespace.
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { expect } from 'vitest';
import {
  PROBLEM_TYPE_PREFIX,
  dereference,
  isReference,
  loadApiDocument,
  pointerToken,
  type HeaderObject,
  type OpenApiDocument,
  type ResponseObject,
} from '../../src/api/openapi-document.js';

/**
 * The API's contract, openapi.yaml, as assertions on real answers: a route test calls
 * `expectMatchesContract(res, { method: 'POST', path: '/api/v1/verifications' })` and learns
 * at once when the code and the document part ways.
 */

/** Read and parsed once per test file. */
export const apiDocument: OpenApiDocument = loadApiDocument().document;

/** The base URI of the document inside ajv: `#/components/...` references resolve against it. */
export const API_DOCUMENT_ID = 'https://keyhole.invalid/openapi.yaml';

/** An RFC 3339 date-time, as `Date.prototype.toISOString` writes it (ajv has no formats of its own). */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** The top-level members of an OpenAPI document: ajv reads them as annotations, never as schemas. */
const OPENAPI_ROOT_KEYWORDS = [
  'openapi',
  'info',
  'jsonSchemaDialect',
  'servers',
  'paths',
  'webhooks',
  'components',
  'security',
  'tags',
  'externalDocs',
  'x-problem-types',
];

/**
 * Ajv for JSON Schema 2020-12 in strict mode, with the whole document added under an $id so that
 * a schema compiled from a pointer into it resolves its `$ref`s. strictRequired stays off: it
 * refuses a `then: { required: [...] }` naming a property that the enclosing schema defines.
 */
export function createContractAjv(document: OpenApiDocument = apiDocument): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (value: string) => DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)),
  });
  ajv.addVocabulary(OPENAPI_ROOT_KEYWORDS);
  ajv.addSchema({ ...document, $id: API_DOCUMENT_ID });
  return ajv;
}

const ajv = createContractAjv();
const validators = new Map<string, ValidateFunction>();

/** A validator for the schema at this JSON pointer into the document ("#/components/schemas/Problem"). */
export function validatorAt(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `${API_DOCUMENT_ID}${pointer}` });
    validators.set(pointer, validate);
  }
  return validate;
}

/** What the helper reads of an answer: a supertest Response, or a hand-made one in the helper's own tests. */
export interface ContractResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface ContractOperation {
  method: string;
  /** The path as the document writes it: `/api/v1/verifications/{id}`, not the id itself. */
  path: string;
}

function describeAnswer(res: ContractResponse): string {
  const body = res.text.length > 2000 ? `${res.text.slice(0, 2000)}…` : res.text;
  return `${res.status} ${String(res.headers['content-type'] ?? '(no content type)')}\n${body}`;
}

function formatErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map(
      (error) => `  ${error.instancePath || '(body)'} ${error.message ?? ''} ${JSON.stringify(error.params)}`,
    )
    .join('\n');
}

function headerValue(res: ContractResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** The media type of the answer, without parameters: "application/json" for "application/json; charset=utf-8". */
function mediaTypeOf(res: ContractResponse): string | undefined {
  return headerValue(res, 'content-type')?.split(';')[0]?.trim().toLowerCase();
}

/** The documented response (and where it lives in the document) for this status, or `default`. */
function documentedResponse(operation: ContractOperation, status: number) {
  const method = operation.method.toLowerCase();
  const item = apiDocument.paths[operation.path];
  const documented = item?.[method as keyof typeof item] as
    { responses?: Record<string, unknown> } | undefined;
  if (!documented?.responses) {
    const known = Object.entries(apiDocument.paths).flatMap(([path, pathItem]) =>
      Object.keys(pathItem)
        .filter((key) => key !== 'parameters')
        .map((key) => `${key.toUpperCase()} ${path}`),
    );
    throw new Error(
      `openapi.yaml has no operation ${operation.method.toUpperCase()} ${operation.path}; it has:\n  ${known.join('\n  ')}`,
    );
  }
  const key = String(status) in documented.responses ? String(status) : 'default';
  const raw = documented.responses[key];
  if (raw === undefined) return { key, statuses: Object.keys(documented.responses) };
  const basePointer = isReference(raw)
    ? raw.$ref.slice(1)
    : `/paths/${pointerToken(operation.path)}/${method}/responses/${key}`;
  return {
    key,
    statuses: Object.keys(documented.responses),
    response: dereference<ResponseObject>(apiDocument, raw as ResponseObject),
    basePointer: `#${basePointer}`,
  };
}

/**
 * The answer is one the document promises for this operation: a documented status (or `default`),
 * the documented content type, every required header (each matching its schema), and a JSON body
 * that validates against the documented schema.
 */
export function expectMatchesContract(res: ContractResponse, operation: ContractOperation): void {
  const where = `${operation.method.toUpperCase()} ${operation.path}`;
  const found = documentedResponse(operation, res.status);
  if (!found.response) {
    expect.fail(
      `${where}: status ${res.status} is undocumented (documented: ${found.statuses.join(', ')})\n${describeAnswer(res)}`,
    );
  }
  const { response, basePointer, key } = found;

  for (const [name, rawHeader] of Object.entries(response.headers ?? {})) {
    const header = dereference<HeaderObject>(apiDocument, rawHeader);
    const value = headerValue(res, name);
    if (value === undefined) {
      if (header.required) expect.fail(`${where} ${res.status}: the required header ${name} is missing`);
      continue;
    }
    if (header.schema) {
      // A header given by $ref is validated where its definition lives.
      const check = validatorAt(
        isReference(rawHeader)
          ? `${rawHeader.$ref}/schema`
          : `${basePointer}/headers/${pointerToken(name)}/schema`,
      );
      if (!check(value)) {
        expect.fail(
          `${where} ${res.status}: header ${name}: ${JSON.stringify(value)}\n${formatErrors(check.errors)}`,
        );
      }
    }
  }

  const content = response.content ?? {};
  const documentedTypes = Object.keys(content);
  if (documentedTypes.length === 0) {
    expect(res.text, `${where} ${res.status}: no body is documented`).toBe('');
    return;
  }
  const mediaType = mediaTypeOf(res);
  if (mediaType === undefined || !documentedTypes.includes(mediaType)) {
    expect.fail(
      `${where} ${res.status}: content type ${mediaType ?? '(none)'} is not the documented ${documentedTypes.join(' or ')}\n${describeAnswer(res)}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    expect.fail(`${where} ${res.status}: the body is not JSON\n${describeAnswer(res)}`);
  }
  const validate = validatorAt(`${basePointer}/content/${pointerToken(mediaType)}/schema`);
  if (!validate(body)) {
    expect.fail(
      `${where} ${res.status} (response ${key}): the body does not match the documented schema\n${formatErrors(validate.errors)}\n${describeAnswer(res)}`,
    );
  }
}

/**
 * The answer is the problem document of this slug: application/problem+json, valid against
 * Problem, with the status and title that openapi.yaml's x-problem-types give the slug. For
 * answers outside any documented operation too (an unknown /api path, a wrong method).
 */
export function expectProblem(res: ContractResponse, slug: string): void {
  const documented = apiDocument['x-problem-types'].find((problemType) => problemType.slug === slug);
  if (!documented) throw new Error(`openapi.yaml's x-problem-types has no ${slug}`);
  expect(mediaTypeOf(res), describeAnswer(res)).toBe('application/problem+json');
  expect(res.status, describeAnswer(res)).toBe(documented.status);
  const body = JSON.parse(res.text) as Record<string, unknown>;
  const validate = validatorAt('#/components/schemas/Problem');
  if (!validate(body)) {
    expect.fail(`not a valid problem document\n${formatErrors(validate.errors)}\n${describeAnswer(res)}`);
  }
  expect(body, describeAnswer(res)).toMatchObject({
    type: `${PROBLEM_TYPE_PREFIX}${slug}`,
    title: documented.title,
    status: documented.status,
  });
}

/** The API keeps no state in the client: no answer sets a cookie. */
export function expectNoCookie(res: ContractResponse): void {
  expect(res.headers['set-cookie'], `a cookie was set: ${String(res.headers['set-cookie'])}`).toBeUndefined();
}
