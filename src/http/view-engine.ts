import fs from 'node:fs';
import { extname, join } from 'node:path';
import ejs from 'ejs';

/**
 * The views' engine: EJS templates, with includes that cost next to nothing.
 *
 * EJS's own include copies every local of the page into a new object, then copies its compile
 * options and resolves the file's path again, on every include of every render: about 10 µs each
 * with a page's forty-odd locals, and a page includes ten to twenty partials (the CSRF field of
 * each form, the time, the head and foot): 74 µs of the account page, now 28 µs (issue 10).
 *
 * Here each template is compiled by EJS itself ("client" mode: the same compiler, the same
 * escaping and error messages with file and line), and its includes are given by us: the path
 * resolved once, and the partial's locals an object whose prototype is the page's (O(1), whatever
 * the number of locals), with the include's own values on it. A partial that assigns to a local
 * changes its own copy, never the page's, as with EJS's copy.
 *
 * Includes name their file from the views folder (include('/partials/head')), as all of ours do.
 *
 * What a partial sees differs from EJS's copy only where no view looks: `Object.keys(locals)` or
 * `JSON.stringify(locals)` in a partial give only the include's own values, and names of
 * Object.prototype (`constructor`, `toString`, `hasOwnProperty`) resolve to its members. Views
 * read locals by name (`locals.errors`, `title`), never enumerate them.
 */

type Locals = Record<string, unknown>;
type Template = (locals: Locals) => string;
type EjsClientFunction = (
  locals: Locals,
  escape: undefined,
  include: (path: string, values?: Locals) => string,
) => string;

export interface ViewEngineOptions {
  /** The views folder: includes starting with "/" are read from it. */
  root: string;
  /** Compile each file once and keep it (production); otherwise read it again at every render. */
  keepCompiled: boolean;
}

/** Express's engine signature: `app.engine('ejs', createViewEngine(...))`. */
export type ViewEngine = (
  path: string,
  locals: object,
  callback: (error: unknown, html?: string) => void,
) => void;

export function createViewEngine(options: ViewEngineOptions): ViewEngine {
  const compiled = new Map<string, Template>();
  const includePaths = new Map<string, string>();

  function includePath(path: string): string {
    let file = includePaths.get(path);
    if (file === undefined) {
      if (!path.startsWith('/')) {
        throw new Error(`include("${path}"): name the file from the views folder, starting with "/"`);
      }
      file = join(options.root, path);
      if (!extname(file)) file += '.ejs';
      includePaths.set(path, file);
    }
    return file;
  }

  function templateAt(file: string): Template {
    const kept = compiled.get(file);
    if (kept) return kept;
    // A byte-order mark is not part of the page (EJS drops it too).
    const source = fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
    const fn = ejs.compile(source, {
      client: true,
      filename: file,
      compileDebug: true,
    }) as unknown as EjsClientFunction;
    const template: Template = (locals) =>
      fn(locals, undefined, (path, values) => {
        const partialLocals: Locals = Object.create(locals) as Locals;
        if (values) Object.assign(partialLocals, values);
        return templateAt(includePath(path))(partialLocals);
      });
    if (options.keepCompiled) compiled.set(file, template);
    return template;
  }

  return (path, locals, callback) => {
    let html: string;
    try {
      html = templateAt(path)(locals as Locals);
    } catch (error) {
      callback(error);
      return;
    }
    callback(null, html);
  };
}
