import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { dirname, join, posix, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OPENAPI_PATH } from '../../src/api/openapi-document.js';
import { PROJECT_ROOT, PUBLIC_DIR, VIEWS_DIR } from '../../src/paths.js';
import { createTestApp, type TestApp } from '../helpers/create-test-app.js';
import {
  commandsOf,
  copiesOf,
  envOf,
  execFormOf,
  healthcheckOf,
  instructionsOf,
  isDockerIgnored,
  parseDockerfile,
  readProjectFile,
  type Stage,
} from './deploy-files.js';

// No Docker engine runs where these tests run (CI included), so the image is never built here:
// these tests hold the Dockerfile to the commands CI and `npm start` do run.

const stages = parseDockerfile(readProjectFile('Dockerfile'));
const runtime = stages.at(-1)!;
const packageJson = JSON.parse(readProjectFile('package.json')) as {
  engines: { node: string };
  scripts: Record<string, string>;
};

function stageNamed(name: string | undefined): Stage {
  const stage = stages.find((candidate) => candidate.name === name);
  if (!stage) throw new Error(`no stage named ${name}`);
  return stage;
}

/** Where each COPY puts a file or folder in the runtime stage, as an absolute path in the image. */
function runtimeDestinations(): Map<string, { from?: string; source: string }> {
  const workdir = instructionsOf(runtime, 'WORKDIR').at(-1)?.args ?? '/';
  const placed = new Map<string, { from?: string; source: string }>();
  for (const copy of copiesOf(runtime)) {
    for (const source of copy.sources) {
      const base = posix.resolve(workdir, copy.destination);
      const target = copy.destination.endsWith('/') ? posix.join(base, posix.basename(source)) : base;
      placed.set(target, { from: copy.from, source });
    }
  }
  return placed;
}

describe('Dockerfile', () => {
  it('builds in a stage of its own and runs on Node 20, the version package.json asks for', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(packageJson.engines.node).toMatch(/^>=20\./);
    for (const stage of stages) expect(stage.base).toBe('node:20-bookworm-slim');
    // The build stage's compiled addons (argon2, better-sqlite3) must load on the runtime's libc.
    expect(new Set(stages.map((stage) => stage.base)).size).toBe(1);
  });

  it('installs with the very command .ci/run uses', () => {
    const ciInstall = readProjectFile('.ci/run')
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line.startsWith('npm ci'));
    expect(ciInstall).toBeDefined();
    const build = stageNamed('build');
    expect(commandsOf(build)).toContain(ciInstall);
  });

  it('compiles with npm run build, the step npm start runs first, after the sources are in', () => {
    // npm start runs npm run build first whenever anything changed (test/scripts/build-if-changed.test.ts).
    expect(packageJson.scripts.start).toBe('node scripts/start.mjs');
    expect(readProjectFile('scripts/start.mjs')).toContain('buildIfChanged()');
    expect(readProjectFile('scripts/build-if-changed.mjs')).toContain("spawnSync(npm, ['run', 'build']");
    const build = stageNamed('build');
    const order = build.instructions.map(({ keyword, args }) => `${keyword} ${args}`);
    const install = order.findIndex((line) => line.startsWith('RUN npm ci'));
    const sources = order.findIndex((line) => /^COPY src\b/.test(line));
    const compile = order.indexOf('RUN npm run build');
    expect(install).toBeGreaterThanOrEqual(0);
    expect(sources).toBeGreaterThan(install);
    expect(compile).toBeGreaterThan(sources);
  });

  it('ships production dependencies only: the node_modules it copies were pruned after the build', () => {
    const modules = runtimeDestinations().get('/app/node_modules');
    expect(modules?.from).toBeDefined();
    const commands = commandsOf(stageNamed(modules!.from));
    const lastChange = commands.findLast((command) => /^npm (ci|install|prune)\b/.test(command));
    expect(lastChange).toMatch(/--omit=dev\b/);
    expect(commands.indexOf(lastChange!)).toBeGreaterThan(commands.indexOf('npm run build'));
  });

  it('starts the file `npm start` starts, which is where tsc writes src/server.ts', () => {
    const cmd = execFormOf(instructionsOf(runtime, 'CMD').at(-1)?.args ?? '');
    // npm start (scripts/start.mjs) checks the build, then imports the compiled server; the image
    // is built already, so it starts that file itself.
    expect(packageJson.scripts.start).toBe('node scripts/start.mjs');
    expect(readProjectFile('scripts/start.mjs')).toContain(`await import('../${cmd?.[1]}')`);
    expect(cmd?.[0]).toBe('node');
    const tsconfig = JSON.parse(readProjectFile('tsconfig.json')) as {
      compilerOptions: { outDir: string; rootDir: string };
    };
    const { outDir, rootDir } = tsconfig.compilerOptions;
    const compiled = posix.join(outDir, posix.relative(rootDir, 'src/server.ts')).replace(/\.ts$/, '.js');
    expect(cmd?.[1]).toBe(compiled);
    expect(runtimeDestinations().get(`/app/${outDir}`)).toMatchObject({ from: 'build' });
  });

  it('puts views/, public/, openapi.yaml and package.json where src/paths.ts looks for them from dist/src/', () => {
    // paths.ts walks up from the compiled file to the first package.json, then takes views/ and public/ beside it.
    const placed = runtimeDestinations();
    const server = `/app/${execFormOf(instructionsOf(runtime, 'CMD').at(-1)!.args)![1]}`;
    let folder = posix.dirname(server);
    while (!placed.has(posix.join(folder, 'package.json')) && folder !== '/') folder = posix.dirname(folder);
    expect(folder).toBe('/app');
    expect(placed.has(posix.join(folder, relative(PROJECT_ROOT, VIEWS_DIR)))).toBe(true);
    expect(placed.has(posix.join(folder, relative(PROJECT_ROOT, PUBLIC_DIR)))).toBe(true);
    // Without it the site would not start: /api/docs is rendered from it (src/api/docs-routes.ts).
    expect(placed.has(posix.join(folder, relative(PROJECT_ROOT, OPENAPI_PATH)))).toBe(true);
  });

  it('runs as a non-root user, who owns only the SQLite folder', () => {
    const user = instructionsOf(runtime, 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const order = runtime.instructions.map(({ keyword }) => keyword);
    expect(order.lastIndexOf('USER')).toBeLessThan(order.lastIndexOf('CMD'));
    // Nothing copied is chowned to the user: the site cannot rewrite its own code.
    expect(instructionsOf(runtime, 'COPY').some(({ args }) => args.includes('--chown'))).toBe(false);
    const dataFolder = dirname(envOf(runtime).DATABASE_PATH!);
    expect(commandsOf(runtime)).toContain(`chown ${user}:${user} ${dataFolder}`);
  });

  it('sets production mode and listens on every interface, on the port it exposes', () => {
    const env = envOf(runtime);
    expect(env).toMatchObject({ NODE_ENV: 'production', HOST: '0.0.0.0' });
    expect(instructionsOf(runtime, 'EXPOSE').map(({ args }) => args)).toEqual([env.PORT]);
  });

  it('checks its health on /healthz at the port it listens on, with node and no curl', () => {
    const { command, options } = healthcheckOf(runtime);
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    const script = command[2]!;
    expect(script).toContain('/healthz');
    expect(script).not.toMatch(/curl|wget/);
    // Read from PORT when someone changes it; else the image's own PORT.
    expect(script).toMatch(/process\.env\.PORT \|\| (\d+)/);
    expect(/process\.env\.PORT \|\| (\d+)/.exec(script)![1]).toBe(envOf(runtime).PORT);
    // The check must give up before Docker kills it, so it says "unhealthy" rather than hanging.
    expect(options.timeout).toBeDefined();
  });
});

describe('the HEALTHCHECK command', () => {
  let site: TestApp | undefined;
  // Closing the database twice is harmless, and close() also removes the test's folder.
  afterEach(async () => {
    await site?.close();
    site = undefined;
  });

  /** Runs the image's health check command against a port on this machine; resolves its exit code. */
  function runHealthcheck(port: number): Promise<number | null> {
    const [node, ...args] = healthcheckOf(runtime).command;
    expect(node).toBe('node');
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { env: { ...process.env, PORT: String(port) } });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code));
    });
  }

  it('passes while the site answers /healthz, and fails once its database is gone', async () => {
    site = await createTestApp();
    const server = site.app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      expect(await runHealthcheck(port)).toBe(0);
      await site.database.close();
      expect(await runHealthcheck(port)).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('fails when nothing listens', async () => {
    expect(await runHealthcheck(9)).toBe(1);
  });
});

describe('.dockerignore', () => {
  const ignoreFile = readProjectFile('.dockerignore');

  it('keeps secrets, local data and installed modules out of the build', () => {
    for (const path of ['.env', '.env.production', 'data', 'data/app.db', 'node_modules', 'dist', '.git']) {
      expect(isDockerIgnored(path, ignoreFile), path).toBe(true);
    }
  });

  it('leaves in everything the Dockerfile copies from the build context', () => {
    const fromContext = stages.flatMap((stage) => copiesOf(stage).filter((copy) => copy.from === undefined));
    const sources = fromContext.flatMap((copy) => copy.sources);
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'views']));
    for (const source of sources) expect(isDockerIgnored(source, ignoreFile), source).toBe(false);
    // And a file inside them, such as the build's own config or a view.
    expect(isDockerIgnored(join('views', 'partials', 'head.ejs'), ignoreFile)).toBe(false);
  });
});
