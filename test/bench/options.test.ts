import { describe, expect, it } from 'vitest';
import { SCENARIOS, readOptions } from '../../bench/options.js';
import { buildRows, describeRun, noResults, type Results } from '../../bench/results.js';

describe('npm run bench -- --only', () => {
  it('measures every scenario unless told otherwise', () => {
    expect([...readOptions([]).only]).toEqual([...SCENARIOS]);
  });

  it('takes a comma-separated list of scenarios', () => {
    expect([...readOptions(['--only', 'wrong-code,account']).only]).toEqual(['wrong-code', 'account']);
  });

  it('refuses a name it does not know, saying which names it takes', () => {
    expect(() => readOptions(['--only', 'account,verify'])).toThrow(
      /--only takes a list of anonymous, account, wrong-code, logins, visits, start; not: verify/,
    );
  });

  it('prints no row for a scenario that was not measured, and says which were not', () => {
    const nothing: Results = { ...noResults(), npmStartSeconds: 1.2 };
    const rows = buildRows(nothing, readOptions(['--only', 'start']));
    expect(rows.map((row) => row.scenario)).toEqual(['`npm start`, nothing changed, to first 200']);
    expect(describeRun(nothing, readOptions(['--only', 'start']), 'pinned')).toContain(
      'Not measured in this run (--only): anonymous, account, wrong-code, logins, visits.',
    );
  });
});
