import { createServer } from 'node:net';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * A real SMTP server (the smtp-server package) on 127.0.0.1 and a port of its own, for tests that
 * send through SMTP and read what arrived: no mocked transport, and nothing reaches a real mail host.
 */

export interface ReceivedEmail {
  /** The SMTP envelope: MAIL FROM and RCPT TO, as the server saw them. */
  envelope: { from: string; to: string[] };
  /** The user that logged in (AUTH), if any. */
  authenticatedUser?: string;
  from: { name: string; address: string }[];
  to: { name: string; address: string }[];
  subject: string;
  text: string;
  html: string;
  headers: ParsedMail['headers'];
  /** The message as it arrived, headers and MIME parts included. */
  raw: string;
}

export interface TestSmtpServerOptions {
  /** Ask for this login (AUTH PLAIN or LOGIN, allowed without TLS here); without it, AUTH is not offered. */
  auth?: { user: string; password: string };
  /**
   * 'greeting': accept connections and never say a word (a host that is up but stuck).
   * 'data': take the message and never answer it.
   */
  hang?: 'greeting' | 'data';
  /** Answer RCPT TO with this SMTP code (a 550 "no such user", a 451 "try later"). */
  refuseRecipientsWith?: number;
}

export interface TestSmtpServer {
  host: string;
  port: number;
  /** smtp://127.0.0.1:port, without credentials. */
  url: string;
  /** What arrived, oldest first; a message is here before its sender's send resolves. */
  messages: ReceivedEmail[];
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

const addressesOf = (field: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(field) ? field : field ? [field] : []).flatMap((group) =>
    group.value.map((entry) => ({ name: entry.name, address: entry.address ?? '' })),
  );

export async function startTestSmtpServer(options: TestSmtpServerOptions = {}): Promise<TestSmtpServer> {
  const messages: ReceivedEmail[] = [];
  const auth = options.auth;
  const server = new SMTPServer({
    logger: false,
    // No certificate here: a client must not be offered STARTTLS it cannot verify.
    disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !auth,
    allowInsecureAuth: true,
    // Hung connections are cut when the test closes the server, not 30 seconds later.
    closeTimeout: 100,
    onConnect(_session, callback) {
      if (options.hang !== 'greeting') callback();
    },
    onAuth(attempt, _session, callback) {
      if (auth && attempt.username === auth.user && attempt.password === auth.password) {
        callback(null, { user: attempt.username });
      } else {
        callback(Object.assign(new Error('Authentication failed'), { responseCode: 535 }));
      }
    },
    onRcptTo(_address, _session, callback) {
      const code = options.refuseRecipientsWith;
      if (code === undefined) callback();
      else callback(Object.assign(new Error('Recipient refused'), { responseCode: code }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (options.hang === 'data') return;
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw).then(
          (parsed) => {
            messages.push({
              envelope: {
                from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                to: session.envelope.rcptTo.map((recipient) => recipient.address),
              },
              authenticatedUser: typeof session.user === 'string' ? session.user : undefined,
              from: addressesOf(parsed.from),
              to: addressesOf(parsed.to),
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              html: typeof parsed.html === 'string' ? parsed.html : '',
              headers: parsed.headers,
              raw,
            });
            callback();
          },
          (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
        );
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const port = (server.server.address() as { port: number }).port;
  return {
    host: HOST,
    port,
    url: `smtp://${HOST}:${port}`,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A loopback port nothing listens on (it was free a moment ago): a mail host that is down. */
export async function unusedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, HOST, () => resolve()));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
