import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { RequestHandler } from 'express';

/**
 * @simplewebauthn/browser, served by the site itself (no CDN: the Content-Security-Policy allows
 * scripts from this origin only). views/partials/passkey-scripts.ejs names this path.
 */
export const PASSKEY_BROWSER_SCRIPT_PATH = '/assets/vendor/simplewebauthn-browser.js';

function isPackageFolder(folder: string): boolean {
  const manifest = join(folder, 'package.json');
  if (!existsSync(manifest)) return false;
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === '@simplewebauthn/browser';
}

/** The package's browser bundle (a UMD file defining window.SimpleWebAuthnBrowser) on disk. */
export function findPasskeyBrowserBundle(): string {
  // The package exports only its modules, not this file: find the package's folder from its
  // entry point, wherever the installer put it (script/ and esm/ hold package.json files of their own).
  let folder = dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser'));
  while (!isPackageFolder(folder)) {
    const parent = dirname(folder);
    if (parent === folder) throw new Error('@simplewebauthn/browser: its package.json was not found');
    folder = parent;
  }
  const bundle = join(folder, 'dist', 'bundle', 'index.umd.min.js');
  if (!existsSync(bundle)) throw new Error(`@simplewebauthn/browser: no browser bundle at ${bundle}`);
  return bundle;
}

/**
 * GET of PASSKEY_BROWSER_SCRIPT_PATH. The file is found once, when the app is built, so a missing
 * package stops the start rather than a passkey page. Cached a week in production, like a file
 * that changes only with a new release (a changed file gets a new ETag).
 */
export function createPasskeyBrowserScriptHandler(isProduction: boolean): RequestHandler {
  const bundle = findPasskeyBrowserBundle();
  return (_req, res, next) => {
    res.sendFile(
      bundle,
      {
        maxAge: isProduction ? '7d' : 0,
        headers: { 'Content-Type': 'text/javascript; charset=utf-8' },
      },
      (error) => {
        if (error && !res.headersSent) next(error);
      },
    );
  };
}
