import { describe, expect, it } from 'vitest';
import { createBrowser } from '../helpers/agent.js';
import { createTestApp } from '../helpers/create-test-app.js';

describe('the request log', () => {
  it('records each request without its query string, cookies or one-time ids', async () => {
    const logLines: string[] = [];
    const site = await createTestApp({ logLines });
    try {
      const browser = createBrowser(site.app);
      await browser.get('/login?registered=someone-secretive');
      await browser.get(`/callbacks/signalwire/voice/${'A'.repeat(43)}`);
      const entries = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(entries).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ msg: 'request', method: 'GET', path: '/login', status: 200 }),
          expect.objectContaining({ msg: 'request', path: '/callbacks/signalwire/voice/:id' }),
        ]),
      );
      const everything = logLines.join('\n');
      expect(everything).not.toContain('someone-secretive');
      expect(everything).not.toContain('A'.repeat(43));
      expect(everything).not.toMatch(/mfa\.sid/);
    } finally {
      await site.close();
    }
  });
});
