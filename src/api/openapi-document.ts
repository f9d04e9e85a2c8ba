import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../paths.js';

/** The API's description (OpenAPI 3.1), beside package.json: served as it is and rendered on /api/docs. */
export const OPENAPI_PATH = join(PROJECT_ROOT, 'openapi.yaml');

/** A JSON Schema (2020-12) as the document writes it: only the keywords the reference page reads are named. */
export interface JsonSchema {
  $ref?: string;
  type?: string;
  description?: string;
  const?: unknown;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  allOf?: JsonSchema[];
  [keyword: string]: unknown;
}

export interface Reference {
  $ref: string;
}

export interface HeaderObject {
  description?: string;
  required?: boolean;
  schema?: JsonSchema;
}

export interface MediaTypeObject {
  schema?: JsonSchema;
  example?: unknown;
}

export interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject | Reference>;
  content?: Record<string, MediaTypeObject>;
}

export interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  description?: string;
  schema?: JsonSchema;
  example?: unknown;
}

export interface CodeSample {
  lang: string;
  label?: string;
  source: string;
}

export interface OperationObject {
  operationId: string;
  tags?: string[];
  summary?: string;
  description?: string;
  parameters?: (ParameterObject | Reference)[];
  requestBody?: { required?: boolean; content: Record<string, MediaTypeObject> };
  responses: Record<string, ResponseObject | Reference>;
  'x-codeSamples'?: CodeSample[];
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export type PathItemObject = { parameters?: (ParameterObject | Reference)[] } & Partial<
  Record<HttpMethod, OperationObject>
>;

/** One kind of problem document: `type` is `urn:keyhole:problem:<slug>`. */
export interface ProblemType {
  slug: string;
  status: number;
  title: string;
  description: string;
}

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; summary?: string; description?: string };
  tags?: { name: string; description?: string }[];
  paths: Record<string, PathItemObject>;
  components: {
    schemas: Record<string, JsonSchema>;
    responses?: Record<string, ResponseObject>;
    parameters?: Record<string, ParameterObject>;
    headers?: Record<string, HeaderObject>;
    securitySchemes?: Record<string, { type: string; scheme?: string; description?: string }>;
  };
  'x-problem-types': ProblemType[];
}

/** The file as it is on disk (what /api/openapi.yaml serves) and what it says. */
export interface LoadedApiDocument {
  text: string;
  document: OpenApiDocument;
}

export const PROBLEM_TYPE_PREFIX = 'urn:keyhole:problem:';

/**
 * Reads and parses the document once (at start, not per request). A file that is not an OpenAPI
 * 3.1 document with paths, schemas and problem types stops the start with its path in the message.
 */
export function loadApiDocument(path: string = OPENAPI_PATH): LoadedApiDocument {
  const text = readFileSync(path, 'utf8');
  // Loaded with the document, at its first use, not at every start.
  const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const document = parse(text) as Partial<OpenApiDocument> | null;
  const problems: string[] = [];
  if (typeof document?.openapi !== 'string' || !document.openapi.startsWith('3.1.')) {
    problems.push('openapi must be 3.1.x');
  }
  if (typeof document?.paths !== 'object' || document.paths === null) problems.push('paths is missing');
  if (typeof document?.components?.schemas !== 'object') problems.push('components.schemas is missing');
  if (!Array.isArray(document?.['x-problem-types'])) problems.push('x-problem-types is missing');
  if (problems.length > 0) throw new Error(`${path}: ${problems.join('; ')}`);
  return { text, document: document as OpenApiDocument };
}

export function isReference(value: unknown): value is Reference {
  return typeof value === 'object' && value !== null && typeof (value as Reference).$ref === 'string';
}

/** The value a local `$ref` ("#/components/schemas/Verification") points to in the document. */
export function resolvePointer(document: OpenApiDocument, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`only local references are used here, not ${ref}`);
  let value: unknown = document;
  for (const token of ref.slice(2).split('/')) {
    const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof value !== 'object' || value === null || !(key in value)) {
      throw new Error(`${ref} does not resolve in the API document`);
    }
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** A response, parameter or header, following its `$ref` when it is one. */
export function dereference<T>(document: OpenApiDocument, value: T | Reference): T {
  return isReference(value) ? (resolvePointer(document, value.$ref) as T) : value;
}

/** The last part of a `$ref` ("Verification" for "#/components/schemas/Verification"). */
export function refName(ref: string): string {
  return ref.slice(ref.lastIndexOf('/') + 1);
}

/** Escapes a path or media type for use as one token of a JSON pointer. */
export function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
