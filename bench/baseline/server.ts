import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Request } from 'express';
import session from 'express-session';

/**
 * The benchmark's yardstick: what a minimal Express 5 + EJS + express-session (MemoryStore) site
 * does for the same pages, written plainly and with nothing the site's rules need. `npm run bench`
 * runs it beside the site, pinned to the same core, and divides the site's numbers by its own.
 *
 *   GET  /login    a small login form rendered by EJS; the session is not touched
 *   GET  /account  the page of a signed-in session (express-session reads it from the MemoryStore)
 *   GET  /verify   starts a session waiting for a code (a CSRF token and the code's HMAC) and shows its form
 *   POST /verify   the bare check: CSRF token, then the code's HMAC, both compared in constant time
 *   POST /login    setup only: signs the session in as the posted name, with no password at all
 */

interface BaselineSession {
  user?: string;
  pending?: { csrf: string; codeHash: string };
}

const VIEWS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'views');
const CODE_KEY = randomBytes(32);

const sessionOf = (req: Request) => req.session as typeof req.session & BaselineSession;
const hmacOf = (code: string) => createHmac('sha256', CODE_KEY).update(code).digest('hex');
const sameText = (given: unknown, expected: string) =>
  typeof given === 'string' &&
  given.length === expected.length &&
  timingSafeEqual(Buffer.from(given), Buffer.from(expected));

const app = express();
app.set('view engine', 'ejs');
app.set('views', VIEWS_DIR);
app.disable('x-powered-by');
app.use(express.urlencoded({ extended: false, limit: '16kb' }));
app.use(
  session({
    secret: randomBytes(32).toString('hex'),
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', maxAge: 30 * 60_000 },
  }),
);

app.get('/login', (_req, res) => res.render('login', { title: 'Log in' }));

app.post('/login', (req, res) => {
  sessionOf(req).user = String((req.body as Record<string, unknown>).username ?? 'someone');
  res.redirect(303, '/account');
});

app.get('/account', (req, res) => {
  const user = sessionOf(req).user;
  if (!user) return res.redirect(303, '/login');
  res.render('account', { title: 'Your account', user });
});

app.get('/verify', (req, res) => {
  const state = sessionOf(req);
  // Never 000000, so the benchmark's 000000 is always a wrong code.
  state.pending ??= {
    csrf: randomBytes(24).toString('base64url'),
    codeHash: hmacOf(String(randomInt(100_000, 1_000_000))),
  };
  res.render('verify', { title: 'Enter your code', csrfToken: state.pending.csrf, error: null });
});

app.post('/verify', (req, res) => {
  const pending = sessionOf(req).pending;
  if (!pending) return res.redirect(303, '/login');
  const body = req.body as Record<string, unknown>;
  if (!sameText(body._csrf, pending.csrf)) return res.status(403).send('The form is out of date.');
  if (sameText(hmacOf(String(body.code ?? '')), pending.codeHash)) return res.redirect(303, '/account');
  res.status(400).render('verify', {
    title: 'Enter your code',
    csrfToken: pending.csrf,
    error: 'That code is not right.',
  });
});

const port = Number(process.env.PORT ?? 3100);
app.listen(port, '127.0.0.1');
