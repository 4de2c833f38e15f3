// CI runs the suite twice, on PostgreSQL and on the embedded database, and stays under 20
// minutes only if the longest tests whose subject does not depend on the database (a process's
// exit codes and signals, a settings file, a metrics port) run on one of them.
export const postgresPassOnly = process.env.DATABASE_URL
  ? {}
  : { skip: 'runs on the PostgreSQL pass (DATABASE_URL): what it checks does not depend on the database' }
