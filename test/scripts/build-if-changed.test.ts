import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/paths.js';

/**
 * `npm start` (scripts/start.mjs) runs scripts/build-if-changed.mjs first, then the compiled server
 * in the same process. Here it runs in a project of its own whose `npm run build` only records that
 * it ran and writes what `tsc -b` writes last, and whose "server" records that it started.
 */
describe('the build before npm start', () => {
  let project: string;
  const builds = () => readFileSync(join(project, 'builds.log'), 'utf8').split('\n').filter(Boolean).length;
  const served = () => readFileSync(join(project, 'starts.log'), 'utf8').split('\n').filter(Boolean).length;
  const start = () => spawnSync(process.execPath, ['scripts/start.mjs'], { cwd: project, encoding: 'utf8' });
  /** An edit now (after the last build, which each start waits for). */
  const edit = (path: string) => utimesSync(join(project, path), new Date(), new Date());

  beforeEach(() => {
    project = mkdtempSync(join(tmpdir(), 'keyhole-build-'));
    mkdirSync(join(project, 'scripts'));
    for (const script of ['scripts/build-if-changed.mjs', 'scripts/start.mjs']) {
      copyFileSync(join(PROJECT_ROOT, script), join(project, script));
    }
    writeFileSync(join(project, 'starts.log'), '');
    mkdirSync(join(project, 'src/http'), { recursive: true });
    writeFileSync(join(project, 'src/server.ts'), 'export {};\n');
    writeFileSync(join(project, 'src/http/page.ts'), 'export {};\n');
    writeFileSync(join(project, 'tsconfig.json'), '{}\n');
    writeFileSync(join(project, 'tsconfig.build.json'), '{}\n');
    mkdirSync(join(project, 'node_modules/typescript'), { recursive: true });
    writeFileSync(join(project, 'node_modules/typescript/package.json'), '{"version":"5.9.3"}\n');
    writeFileSync(join(project, 'builds.log'), '');
    // As tsc -b: the record last, with "errors" when the sources do not compile.
    writeFileSync(
      join(project, 'build.mjs'),
      `import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
appendFileSync('builds.log', 'built\\n');
const errors = readFileSync('src/server.ts', 'utf8').includes('ERROR');
mkdirSync('dist/src', { recursive: true });
writeFileSync('dist/src/server.js', "import { appendFileSync } from 'node:fs';\\nappendFileSync('starts.log', 'started\\\\n');\\n");
writeFileSync('dist/tsconfig.build.tsbuildinfo', JSON.stringify({ root: [], ...(errors ? { errors: true } : {}), version: '5.9.3' }));
process.exit(errors ? 1 : 0);
`,
    );
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ type: 'module', scripts: { build: 'node build.mjs' } }),
    );
  });
  afterEach(() => rmSync(project, { recursive: true, force: true }));

  it('builds on the first start, then not again while nothing has changed', () => {
    const first = start();
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('Building (no build yet)');
    expect(builds()).toBe(1);

    for (let i = 0; i < 2; i += 1) expect(start()).toMatchObject({ status: 0, stdout: '' });
    expect(builds()).toBe(1);
    // Each start then ran the compiled server.
    expect(served()).toBe(3);
  });

  it('builds again after a source or a setting changed, or a source was deleted', () => {
    start();
    edit('src/http/page.ts');
    expect(start().stdout).toContain('Building (sources changed)');
    expect(builds()).toBe(2);

    edit('tsconfig.build.json');
    start();
    expect(builds()).toBe(3);

    // Deleting a file changes its folder's modification time.
    rmSync(join(project, 'src/http/page.ts'));
    start();
    expect(builds()).toBe(4);
    expect(start().stdout).toBe('');
    expect(builds()).toBe(4);
  });

  it('builds again after a failed build, so the errors show and the start stops', () => {
    writeFileSync(join(project, 'src/server.ts'), 'ERROR\n');
    expect(start().status).not.toBe(0);
    expect(start().status).not.toBe(0);
    expect(builds()).toBe(2);
    expect(served()).toBe(0);
  });

  it('builds again with another TypeScript', () => {
    start();
    writeFileSync(join(project, 'node_modules/typescript/package.json'), '{"version":"5.9.4"}\n');
    expect(start().stdout).toContain('Building (another TypeScript version)');
    expect(builds()).toBe(2);
  });
});
