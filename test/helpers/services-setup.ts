import type { TestProject } from 'vitest/node';
import {
  areServiceTestsRequired,
  checkServices,
  describeRequiredServices,
  describeSkippedServices,
  type ServiceAvailability,
} from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceAvailability;
  }
}

/**
 * Runs once per `vitest run`: asks PostgreSQL and Redis once, hands the answer to every test file
 * (`inject('services')`), and says in one line which suites skip, or fails where none may.
 */
export default async function checkForServices(project: TestProject): Promise<void> {
  const available = await checkServices();
  const skipped = describeSkippedServices(available);
  if (skipped !== null) {
    if (areServiceTestsRequired) throw new Error(describeRequiredServices(available));
    console.warn(skipped);
  }
  project.provide('services', available);
}
