// Package mocktest holds txn's tests that use pgxmock. They live apart from
// txn's own tests so that those (the integration tests) compile and run
// against the newest pgx, which pgxmock v5.2.0 does not compile against
// (scripts/pgx-latest.sh checks it in CI). It has no code of its own.
package mocktest
