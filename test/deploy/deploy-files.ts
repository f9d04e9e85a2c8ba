import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../src/paths.js';

/**
 * Readers for the container files. No Docker engine runs where the tests run, so the tests read
 * the Dockerfile and compose.yaml the way Docker would, as far as these files use them: enough to
 * hold them to package.json, .ci/run and the config schema.
 */

export function readProjectFile(name: string): string {
  return readFileSync(join(PROJECT_ROOT, name), 'utf8');
}

export interface Instruction {
  keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  args: string;
}

export interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

/** The Dockerfile's stages in order; comments dropped and `\` continuations joined, as Docker does. */
export function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    // Docker drops comment lines even in the middle of a continued instruction.
    if (line === '' || line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const whole = pending + line;
    pending = '';
    const [keyword = '', ...rest] = whole.split(/\s+/);
    instructions.push({ keyword: keyword.toUpperCase(), args: rest.join(' ') });
  }
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [base = '', as, name] = instruction.args.split(/\s+/);
      stages.push({ base, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`${instruction.keyword} before the first FROM`);
      stage.instructions.push(instruction);
    }
  }
  return stages;
}

export function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword);
}

/** Each shell command a stage runs, in order: RUN lines split at `&&`. */
export function commandsOf(stage: Stage): string[] {
  return instructionsOf(stage, 'RUN').flatMap(({ args }) => args.split('&&').map((part) => part.trim()));
}

/** An exec-form argument list (`["node", "x.js"]`), or undefined for the shell form. */
export function execFormOf(args: string): string[] | undefined {
  if (!args.trim().startsWith('[')) return undefined;
  // Docker falls back to the shell form, silently, when the JSON does not parse: let that fail here.
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) {
    throw new Error(`not a list of strings: ${args}`);
  }
  return parsed;
}

/** The stage's ENV variables (KEY=value form), later ones winning. */
export function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { args } of instructionsOf(stage, 'ENV')) {
    for (const pair of args.split(/\s+/).filter(Boolean)) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(pair);
      if (!match) throw new Error(`ENV written other than KEY=value: ${args}`);
      env[match[1]!] = match[2]!.replace(/^"(.*)"$/, '$1');
    }
  }
  return env;
}

export interface Copy {
  /** The stage it copies from (--from), or undefined for the build context. */
  from?: string;
  sources: string[];
  destination: string;
}

export function copiesOf(stage: Stage): Copy[] {
  return instructionsOf(stage, 'COPY').map(({ args }) => {
    const words = args.split(/\s+/);
    const flags = words.filter((word) => word.startsWith('--'));
    const paths = words.filter((word) => !word.startsWith('--'));
    const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length);
    return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
  });
}

/** The HEALTHCHECK's options (--interval=30s...) and its command. */
export function healthcheckOf(stage: Stage): { options: Record<string, string>; command: string[] } {
  const [healthcheck] = instructionsOf(stage, 'HEALTHCHECK');
  if (!healthcheck) throw new Error('no HEALTHCHECK');
  const match = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$/s.exec(healthcheck.args);
  if (!match) throw new Error(`HEALTHCHECK without CMD: ${healthcheck.args}`);
  const options = Object.fromEntries(
    match[1]!
      .split(/\s+/)
      .filter(Boolean)
      .map((option) => option.slice(2).split('=') as [string, string]),
  );
  const command = execFormOf(match[2]!);
  if (!command) throw new Error('HEALTHCHECK CMD in shell form');
  return { options, command };
}

/** Whether a path of the build context is left out by these .dockerignore lines. */
export function isDockerIgnored(path: string, ignoreFile: string): boolean {
  const normalised = path.replace(/^\.\//, '').replace(/\/+$/, '');
  let ignored = false;
  for (const rawLine of ignoreFile.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    const pattern = (negated ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
    const regex = new RegExp(
      `^${pattern
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*')}(/.*)?$`,
    );
    if (regex.test(normalised)) ignored = !negated;
  }
  return ignored;
}

/** compose.yaml as Docker Compose reads it: YAML with merge keys (`<<: *anchor`). */
export function parseCompose(text: string): ComposeFile {
  return parse(text, { merge: true }) as ComposeFile;
}

export interface ComposeService {
  image?: string;
  build?: string | { context: string };
  restart?: string;
  environment?: Record<string, string | number | boolean | null>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test: string[] | string };
  ports?: string[];
  volumes?: string[];
  command?: string[] | string;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

export class InterpolationError extends Error {}

/**
 * Compose's interpolation of one value: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
 * ${VAR:?error} and ${VAR?error}. A required variable that is missing throws, as Compose refuses to start.
 */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_whole, dollar: string | undefined, braced, operator: string | undefined, operand = '', bare) => {
      if (dollar) return '$';
      const name = (braced ?? bare) as string;
      const current = env[name];
      const missing = operator?.startsWith(':') ? !current : current === undefined;
      if (!operator || !missing) return current ?? '';
      if (operator.endsWith('-')) return operand;
      throw new InterpolationError(`${name}: ${operand}`);
    },
  );
}

/** A service's environment with every ${...} filled from env, as the container receives it. */
export function environmentOf(
  service: ComposeService,
  env: Record<string, string | undefined>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([name, value]) => [
      name,
      interpolate(String(value ?? ''), env),
    ]),
  );
}
