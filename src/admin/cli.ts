import dotenv from 'dotenv';
import { systemClock } from '../clock.js';
import { ConfigError, loadConfig } from '../config.js';
import { createSqlAuditLog } from '../stores/sql/audit-log.js';
import { createSqlCodeEntryCeiling } from '../stores/sql/code-entry-ceiling.js';
import { describeDatabase, openConfiguredDatabase } from '../stores/index.js';
import { createSqlUserStore } from '../stores/sql/user-store.js';
import { runAdminCommand } from './command.js';

/**
 * Process entry of `npm run admin -- ...`: reads the same environment and .env as the site, opens
 * the same database (safe while the site runs: SQLite serialises the writes, PostgreSQL too), runs the command.
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
  // The same database as the site: PostgreSQL when DATABASE_URL is set, else the SQLite file.
  const database = await openConfiguredDatabase(config, (error) =>
    console.error('A database connection failed:', error.message),
  );
  try {
    const result = await runAdminCommand(process.argv.slice(2), {
      users: createSqlUserStore(database, systemClock),
      audit: createSqlAuditLog(database, systemClock),
      adminUsernames: config.adminUsernames,
      databaseName: describeDatabase(config),
      ceiling: createSqlCodeEntryCeiling(database, systemClock),
    });
    (result.exitCode === 0 ? console.log : console.error)(result.output);
    return result.exitCode;
  } finally {
    await database.close();
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
