import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * The PostgreSQL server of the test run: scripts/with-postgres starts a throwaway one and passes
 * TEST_DATABASE_URL (scripts/test runs the unit stage through it). Each test gets a database of
 * its own; nothing is skipped when the server is missing: the test fails and says how to run it.
 */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) {
    throw new Error(
      "TEST_DATABASE_URL is not set: run the tests through scripts/with-postgres (scripts/test does), e.g. scripts/with-postgres -- npx vitest run test/audit",
    );
  }
  return url;
}

/** A new, empty database on the test server; `drop` removes it (after its clients closed). */
export async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = new pg.Client({ connectionString: testDatabaseUrl() });
  await admin.connect();
  const name = `gexec_test_${randomBytes(6).toString("hex")}`;
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: testDatabaseUrl() });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
