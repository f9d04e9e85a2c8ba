// `npm start`: builds when the compiled site may be out of date (build-if-changed.mjs), then runs
// it in this very process. A pre-script would start one more Node process (and a shell) on every
// start, about a fifth of a second of `npm start` with nothing changed (issue 10).
//
// Plain JavaScript, so that it runs before anything is compiled and without tsx.
import { buildIfChanged } from './build-if-changed.mjs';

const status = buildIfChanged();
if (status !== 0) process.exit(status);
await import('../dist/src/server.js');
