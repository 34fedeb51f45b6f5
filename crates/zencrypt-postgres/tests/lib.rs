//! The PostgreSQL backend's tests, in one test binary: the storage conformance suite and
//! the backend's own (creation, refusals, migration, locks, TLS, redaction), each in a
//! database of its own on the server `ZENCRYPT_TEST_DB_URL` names.

mod backend;
mod conformance;
mod support;
