// `npm start` (scripts/start.mjs) and `npm run admin` (its pre-script) run this first. It runs `npm run build` only
// when the compiled site may be out of date, so a start with nothing changed does not pay for
// loading the compiler (about half a second) and another npm (a quarter). `npm run build` is
// `tsc -b`, which checks again and compiles everything when anything changed.
//
// Plain JavaScript, so that it runs before anything is compiled and without tsx.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What `tsc -b tsconfig.build.json` writes last, beside the code it compiled. */
const stampOf = (root) => join(root, 'dist', 'tsconfig.build.tsbuildinfo');
/** Everything the compiled code depends on: the sources (folders too, so a deleted file counts) and the settings. */
const INPUT_FILES = ['package.json', 'tsconfig.json', 'tsconfig.build.json'];
const INPUT_FOLDERS = ['src'];

/** The newest modification time among `path` and, for a folder, everything in it. */
function newestIn(path) {
  const stats = statSync(path);
  if (!stats.isDirectory()) return stats.mtimeMs;
  let newest = stats.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestIn(join(path, entry)));
  return newest;
}

/** Why a build is needed, or null when dist/ was compiled from exactly what is here now. */
export function reasonToBuild(root = ROOT, stamp = stampOf(root)) {
  let record;
  try {
    record = { mtimeMs: statSync(stamp).mtimeMs, ...JSON.parse(readFileSync(stamp, 'utf8')) };
  } catch {
    return 'no build yet';
  }
  // The last build failed: build again, so the errors are shown and the start stops.
  if (record.errors) return 'the last build had errors';
  const compiler = JSON.parse(readFileSync(join(root, 'node_modules/typescript/package.json'), 'utf8'));
  if (record.version !== compiler.version) return 'another TypeScript version';
  const inputs = [...INPUT_FILES, ...INPUT_FOLDERS].map((name) => join(root, name));
  if (Math.max(...inputs.map(newestIn)) > record.mtimeMs) return 'sources changed';
  return null;
}

/**
 * Runs `npm run build` when reasonToBuild says so; the exit status of that build, or 0 when none
 * was needed.
 */
export function buildIfChanged(root = ROOT) {
  const reason = reasonToBuild(root);
  if (reason === null) return 0;
  console.log(`Building (${reason})...`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['run', 'build'], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  });
  return result.status ?? 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const status = buildIfChanged();
  if (status !== 0) process.exit(status);
}
