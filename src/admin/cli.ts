import dotenv from 'dotenv';
import { createSqliteAuditLog } from '../audit/log.js';
import { systemClock } from '../clock.js';
import { ConfigError, loadConfig } from '../config.js';
import { openDatabase } from '../db/open.js';
import { createSqliteCodeEntryCeiling } from '../mfa/code-entry-ceiling.js';
import { createSqliteUserStore } from '../users/store.js';
import { runAdminCommand } from './command.js';

/**
 * Process entry of `npm run admin -- ...`: reads the same environment and .env as the site, opens
 * the same database (safe while the site runs: SQLite serialises the writes), runs the command.
 */
async function main(): Promise<number> {
  dotenv.config({ quiet: true });
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    console.error('Fix these in your environment or .env file (see .env.example), then run this again.');
    return 1;
  }
  const db = openDatabase(config.databasePath);
  try {
    const result = await runAdminCommand(process.argv.slice(2), {
      users: createSqliteUserStore(db, systemClock),
      audit: createSqliteAuditLog(db, systemClock),
      adminUsernames: config.adminUsernames,
      databasePath: config.databasePath,
      ceiling: createSqliteCodeEntryCeiling(db, systemClock),
    });
    (result.exitCode === 0 ? console.log : console.error)(result.output);
    return result.exitCode;
  } finally {
    db.close();
  }
}

main().then(
  (exitCode) => {
    process.exitCode = exitCode;
  },
  (error: unknown) => {
    console.error('The admin command failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
