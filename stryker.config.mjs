// npm run test:mutation (docs/testing.md). Scope it to the files a change touched:
//   npm run test:mutation -- --mutate src/access/require.ts
// The covering test files run in the order listed and stop at the first that fails: the quick,
// focused ones first make a killed mutant cheap. STRYKER_TEST_FILES (comma-separated) narrows them
// for a quick run on one file: a score measured on fewer test files is a lower bound of the
// whole suite's.
const ALL_TEST_FILES = [
  'test/fair-share.test.ts',
  'test/permissions.test.ts',
  'test/failure-brake.test.ts',
  'test/jwt.test.ts',
  'test/permission-sets.test.ts',
  'test/access-admin.test.ts',
  'test/express-cases.test.ts',
  'test/http.test.ts',
  'test/modules.test.ts',
  'test/openapi.test.ts',
  'test/bad-input.test.ts',
  'test/identity.test.ts',
  'test/metrics.test.ts',
  'test/tenant-scope.test.ts',
  'test/migrations.test.ts',
  'test/request-transaction.test.ts',
  'test/seed-modules.test.ts',
  'src/plugins/*/test/*.test.ts',
]

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  tap: {
    testFiles: process.env.STRYKER_TEST_FILES ? process.env.STRYKER_TEST_FILES.split(',') : ALL_TEST_FILES,
    nodeArgs: ['--import', 'tsx'],
  },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: [
    'src/http/tenant-request.ts',
    'src/tenancy/resolve-tenant.ts',
    'src/tenancy/transaction.ts',
    'src/tenancy/with-tenant-tx.ts',
    'src/tenancy/fair-share.ts',
    'src/tenancy/migrations.ts',
    'src/access/*.ts',
    'src/modules/express/router.ts',
  ],
  coverageAnalysis: 'perTest',
  ignoreStatic: true,
  // One TypeScript checker and one test runner. Two test runners (concurrency 4: Stryker gives half
  // to checkers) finish sooner on two cores, but their contention fires tap's own test timeouts,
  // and a mutant "killed" by a timeout is not one (docs/testing.md counts those out).
  concurrency: 2,
  timeoutMS: 20000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
}
