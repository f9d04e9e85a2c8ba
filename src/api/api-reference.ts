import {
  HTTP_METHODS,
  PROBLEM_TYPE_PREFIX,
  dereference,
  refName,
  resolvePointer,
  type HeaderObject,
  type JsonSchema,
  type MediaTypeObject,
  type OpenApiDocument,
  type OperationObject,
  type ParameterObject,
  type ResponseObject,
} from './openapi-document.js';

/**
 * What /api/docs shows, built once from the parsed OpenAPI document. The page is text only: the
 * document's descriptions become paragraphs, lists and `code` spans here, and the view escapes
 * every piece, so nothing in the document is ever written into the page as HTML.
 */

export interface Inline {
  text: string;
  code: boolean;
}

export type TextBlock = { kind: 'paragraph'; inlines: Inline[] } | { kind: 'list'; items: Inline[][] };

export interface FieldRow {
  name: string;
  /** Where a parameter goes (path, header); undefined for a body field. */
  location?: string;
  type: string;
  required: boolean;
  description: Inline[];
  constraints: string[];
}

export interface ResponseView {
  status: string;
  description: Inline[];
  contentType?: string;
  /** The named schema of the body ("Verification", "Problem"). */
  schemaName?: string;
  /** For a problem document: the slugs it may carry, each listed under #problem-<slug>. */
  problemSlugs: string[];
  /** For any other body: its fields. */
  fields: FieldRow[];
  headers: { name: string; required: boolean; description: Inline[] }[];
  example?: string;
}

export interface OperationView {
  id: string;
  anchor: string;
  method: string;
  path: string;
  summary: string;
  description: TextBlock[];
  parameters: FieldRow[];
  requestBody?: { contentTypes: string[]; schemaName?: string; fields: FieldRow[]; example?: string };
  responses: ResponseView[];
  samples: { label: string; source: string }[];
}

export interface ProblemTypeView {
  slug: string;
  anchor: string;
  type: string;
  status: number;
  title: string;
  description: Inline[];
}

export interface ApiReference {
  title: string;
  version: string;
  summary: string;
  overview: TextBlock[];
  authentication: TextBlock[];
  sections: { id: string; title: string; description: TextBlock[]; operations: OperationView[] }[];
  problemFields: FieldRow[];
  problemTypes: ProblemTypeView[];
}

/** Anchors on /api/docs: each problem type's is part of the contract (its `type` slug). */
export const problemAnchor = (slug: string) => `problem-${slug}`;
export const operationAnchor = (operationId: string) => `op-${operationId}`;

/** `code` spans in a line of text. */
export function inlinesOf(text: string): Inline[] {
  return text
    .split(/(`[^`]+`)/)
    .filter((piece) => piece !== '')
    .map((piece) =>
      piece.startsWith('`') && piece.endsWith('`') && piece.length > 1
        ? { text: piece.slice(1, -1), code: true }
        : { text: piece, code: false },
    );
}

/** Paragraphs (blank lines between) and lists (lines starting "- "): the little of Markdown the document uses. */
export function blocksOf(text: string | undefined): TextBlock[] {
  if (!text) return [];
  return text
    .trim()
    .split(/\n\s*\n/)
    .map((chunk): TextBlock => {
      const lines = chunk.split('\n').map((line) => line.trim());
      if (lines.every((line) => line.startsWith('- '))) {
        return { kind: 'list', items: lines.map((line) => inlinesOf(line.slice(2))) };
      }
      return { kind: 'paragraph', inlines: inlinesOf(lines.join(' ')) };
    });
}

const flatInlines = (text: string | undefined) => inlinesOf((text ?? '').replace(/\s+/g, ' ').trim());

const showValue = (value: unknown) => JSON.stringify(value);

/** A schema with its `$ref` followed, the keywords written beside the `$ref` winning. */
function expand(document: OpenApiDocument, schema: JsonSchema): { schema: JsonSchema; name?: string } {
  if (!schema.$ref) return { schema };
  const { $ref, ...beside } = schema;
  const target = expand(document, resolvePointer(document, $ref) as JsonSchema);
  return { schema: { ...target.schema, ...beside }, name: target.name ?? refName($ref) };
}

function typeOf(document: OpenApiDocument, schema: JsonSchema, name: string | undefined): string {
  if (schema.type === 'array' && schema.items) {
    const items = expand(document, schema.items);
    return `array of ${typeOf(document, items.schema, items.name)}`;
  }
  if (schema.type === 'object') return name ?? 'object';
  const base = schema.type ?? 'any';
  return schema.format ? `${base} (${schema.format})` : base;
}

function constraintsOf(schema: JsonSchema): string[] {
  const found: string[] = [];
  if (schema.const !== undefined) found.push(`always ${showValue(schema.const)}`);
  if (schema.enum) found.push(`one of ${schema.enum.map(showValue).join(', ')}`);
  const { minLength, maxLength, minimum, maximum } = schema;
  if (minLength !== undefined && maxLength !== undefined)
    found.push(`${minLength} to ${maxLength} characters`);
  else if (maxLength !== undefined) found.push(`at most ${maxLength} characters`);
  else if (minLength !== undefined && minLength > 1) found.push(`at least ${minLength} characters`);
  if (minimum !== undefined && maximum !== undefined) found.push(`${minimum} to ${maximum}`);
  else if (minimum !== undefined) found.push(`at least ${minimum}`);
  else if (maximum !== undefined) found.push(`at most ${maximum}`);
  if (schema.pattern) found.push(`matches ${schema.pattern}`);
  if (schema.default !== undefined) found.push(`default ${showValue(schema.default)}`);
  return found;
}

/** One row per property of an object schema, in the document's order. */
export function fieldsOf(document: OpenApiDocument, objectSchema: JsonSchema): FieldRow[] {
  const { schema } = expand(document, objectSchema);
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, property]) => {
    const expanded = expand(document, property);
    return {
      name,
      type: typeOf(document, expanded.schema, expanded.name),
      required: required.has(name),
      description: flatInlines(expanded.schema.description),
      constraints: constraintsOf(expanded.schema),
    };
  });
}

function parameterRow(document: OpenApiDocument, parameter: ParameterObject): FieldRow {
  const expanded = parameter.schema ? expand(document, parameter.schema) : { schema: {} as JsonSchema };
  return {
    name: parameter.name,
    location: parameter.in,
    type: typeOf(document, expanded.schema, expanded.name),
    required: parameter.required === true,
    description: flatInlines(parameter.description ?? expanded.schema.description),
    constraints: constraintsOf(expanded.schema),
  };
}

/** The problem types a response schema allows: `allOf: [Problem, { properties: { type: { enum } } }]`. */
export function problemSlugsOf(schema: JsonSchema | undefined): string[] {
  const narrowing = schema?.allOf?.find((part) => !part.$ref)?.properties?.type?.enum ?? [];
  return narrowing
    .filter((type): type is string => typeof type === 'string' && type.startsWith(PROBLEM_TYPE_PREFIX))
    .map((type) => type.slice(PROBLEM_TYPE_PREFIX.length));
}

const exampleText = (media: MediaTypeObject | undefined) =>
  media?.example === undefined ? undefined : JSON.stringify(media.example, null, 2);

function responseView(document: OpenApiDocument, status: string, response: ResponseObject): ResponseView {
  const [contentType, media] = Object.entries(response.content ?? {})[0] ?? [];
  const problemSlugs = problemSlugsOf(media?.schema);
  const body = media?.schema ? expand(document, media.schema) : undefined;
  const problemRef = media?.schema?.allOf?.find((part) => part.$ref)?.$ref;
  return {
    status,
    description: flatInlines(response.description),
    contentType,
    schemaName: problemRef ? refName(problemRef) : body?.name,
    problemSlugs,
    fields: media?.schema && problemSlugs.length === 0 ? fieldsOf(document, media.schema) : [],
    // Cache-Control is the same on every answer; the overview says it once.
    headers: Object.entries(response.headers ?? {})
      .filter(([name]) => name.toLowerCase() !== 'cache-control')
      .map(([name, header]) => {
        const resolved = dereference<HeaderObject>(document, header);
        return { name, required: resolved.required === true, description: flatInlines(resolved.description) };
      }),
    example: problemSlugs.length === 0 ? exampleText(media) : undefined,
  };
}

function operationView(
  document: OpenApiDocument,
  path: string,
  method: string,
  operation: OperationObject,
  pathParameters: ParameterObject[],
): OperationView {
  const parameters = [
    ...pathParameters,
    ...(operation.parameters ?? []).map((parameter) => dereference<ParameterObject>(document, parameter)),
  ];
  const content = operation.requestBody?.content;
  const firstBody = content ? Object.values(content)[0] : undefined;
  const jsonBody = content?.['application/json'] ?? firstBody;
  return {
    id: operation.operationId,
    anchor: operationAnchor(operation.operationId),
    method: method.toUpperCase(),
    path,
    summary: operation.summary ?? operation.operationId,
    description: blocksOf(operation.description),
    parameters: parameters.map((parameter) => parameterRow(document, parameter)),
    requestBody:
      content && firstBody?.schema
        ? {
            contentTypes: Object.keys(content),
            schemaName: expand(document, firstBody.schema).name,
            fields: fieldsOf(document, firstBody.schema),
            example: exampleText(jsonBody),
          }
        : undefined,
    responses: Object.entries(operation.responses).map(([status, response]) =>
      responseView(document, status, dereference<ResponseObject>(document, response)),
    ),
    samples: (operation['x-codeSamples'] ?? []).map((sample) => ({
      label: sample.label ?? sample.lang,
      source: sample.source.trimEnd(),
    })),
  };
}

/** Every operation, in the document's order, grouped under its first tag. */
export function buildApiReference(document: OpenApiDocument): ApiReference {
  const sections = (document.tags ?? []).map((tag) => ({
    id: `tag-${tag.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`,
    title: tag.name,
    description: blocksOf(tag.description),
    operations: [] as OperationView[],
  }));
  for (const [path, item] of Object.entries(document.paths)) {
    const pathParameters = (item.parameters ?? []).map((parameter) =>
      dereference<ParameterObject>(document, parameter),
    );
    for (const method of HTTP_METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const tag = operation.tags?.[0];
      let section = sections.find((candidate) => candidate.title === tag);
      if (!section) {
        section = { id: 'tag-other', title: 'Other', description: [], operations: [] };
        sections.push(section);
      }
      section.operations.push(operationView(document, path, method, operation, pathParameters));
    }
  }
  const bearer = Object.values(document.components.securitySchemes ?? {})[0];
  const problem = document.components.schemas.Problem;
  return {
    title: document.info.title,
    version: document.info.version,
    summary: document.info.summary ?? '',
    overview: blocksOf(document.info.description),
    authentication: blocksOf(bearer?.description),
    sections: sections.filter((section) => section.operations.length > 0),
    problemFields: problem ? fieldsOf(document, problem) : [],
    problemTypes: document['x-problem-types'].map((problemType) => ({
      slug: problemType.slug,
      anchor: problemAnchor(problemType.slug),
      type: `${PROBLEM_TYPE_PREFIX}${problemType.slug}`,
      status: problemType.status,
      title: problemType.title,
      description: flatInlines(problemType.description),
    })),
  };
}
