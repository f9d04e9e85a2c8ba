import fs from 'node:fs';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createViewEngine } from '../../src/http/view-engine.js';

/** The views' engine (src/http/view-engine.ts): EJS templates, includes without copying the locals. */

let root: string;
const write = (name: string, text: string) => {
  mkdirSync(join(root, name, '..'), { recursive: true });
  writeFileSync(join(root, name), text);
};
const render = (engine: ReturnType<typeof createViewEngine>, name: string, locals: object) =>
  new Promise<string>((resolve, reject) =>
    engine(join(root, name), locals, (error, html) => (error ? reject(error as Error) : resolve(html!))),
  );

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'keyhole-views-'));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('the view engine', () => {
  it('renders EJS: escaped and raw output, code, and the locals object', async () => {
    write('page.ejs', '<p><%= text %></p><%- raw %><% if (locals.missing) { %>no<% } else { %>yes<% } %>');
    const engine = createViewEngine({ root, keepCompiled: false });
    expect(await render(engine, 'page.ejs', { text: '<b>&"', raw: '<i>ok</i>' })).toBe(
      '<p>&lt;b&gt;&amp;&#34;</p><i>ok</i>yes',
    );
  });

  it("gives an include the page's locals and its own values, named from the views folder", async () => {
    write(
      'page.ejs',
      '[<%- include("/partials/hello", { name: "Ada" }) %>|<%- include("/partials/hello.ejs") %>]',
    );
    write('partials/hello.ejs', '<%= greeting %>, <%= locals.name || "stranger" %>');
    const engine = createViewEngine({ root, keepCompiled: false });
    expect(await render(engine, 'page.ejs', { greeting: 'Hello' })).toBe('[Hello, Ada|Hello, stranger]');
  });

  it("keeps a partial's assignments and its values to itself: the page and later includes never see them", async () => {
    write(
      'page.ejs',
      '<%- include("/a", { shade: "red" }) %>-<%= shade %>-<%- include("/b") %>-<%= count %>',
    );
    write('a.ejs', '<% count = count + 1; shade = shade + "!" %><%= shade %><%= count %>');
    write('b.ejs', '<%= shade %><%= count %>');
    const engine = createViewEngine({ root, keepCompiled: false });
    expect(await render(engine, 'page.ejs', { shade: 'blue', count: 1 })).toBe('red!2-blue-blue1-1');
  });

  it('leaves out a byte-order mark at the start of a file', async () => {
    write('page.ejs', '\uFEFF<p><%- include("/part") %></p>');
    write('part.ejs', '\uFEFFhi');
    const engine = createViewEngine({ root, keepCompiled: false });
    expect(await render(engine, 'page.ejs', {})).toBe('<p>hi</p>');
  });

  it('includes within includes', async () => {
    write('page.ejs', '<%- include("/outer", { level: 1 }) %>');
    write('outer.ejs', 'outer <%= level %> <%- include("/inner", { level: level + 1 }) %> <%= level %>');
    write('inner.ejs', 'inner <%= level %> <%= site %>');
    const engine = createViewEngine({ root, keepCompiled: false });
    expect(await render(engine, 'page.ejs', { site: 'Keyhole' })).toBe('outer 1 inner 2 Keyhole 1');
  });

  it('reports an error with the file and line it happened on, through the callback', async () => {
    write('page.ejs', 'one\n<%- include("/broken") %>');
    write('broken.ejs', 'first line\n<%= notDefined.property %>');
    const engine = createViewEngine({ root, keepCompiled: false });
    const error = (await render(engine, 'page.ejs', {}).catch((caught: unknown) => caught)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain(join(root, 'broken.ejs'));
    expect(error.message).toMatch(/>> 2\| <%= notDefined\.property %>/);
    expect(error.message).toMatch(/notDefined is not defined/);
  });

  it('refuses an include not named from the views folder', async () => {
    write('page.ejs', '<%- include("partials/x") %>');
    const engine = createViewEngine({ root, keepCompiled: false });
    await expect(render(engine, 'page.ejs', {})).rejects.toThrow(/starting with "\/"/);
  });

  it('in production reads each file once; otherwise an edited template shows at once', async () => {
    write('page.ejs', 'v1 <%- include("/part") %>');
    write('part.ejs', 'p1');
    const kept = createViewEngine({ root, keepCompiled: true });
    const fresh = createViewEngine({ root, keepCompiled: false });
    expect(await render(kept, 'page.ejs', {})).toBe('v1 p1');
    expect(await render(fresh, 'page.ejs', {})).toBe('v1 p1');
    write('page.ejs', 'v2 <%- include("/part") %>');
    write('part.ejs', 'p2');
    const reads = vi.spyOn(fs, 'readFileSync');
    expect(await render(kept, 'page.ejs', {})).toBe('v1 p1');
    expect(reads).not.toHaveBeenCalled();
    expect(await render(fresh, 'page.ejs', {})).toBe('v2 p2');
  });
});
