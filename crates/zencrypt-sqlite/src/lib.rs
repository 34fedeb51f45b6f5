//! zencrypt's embedded SQLite backend: one file (0600, in a 0700 directory), WAL,
//! `synchronous=FULL`, foreign keys, a busy timeout, IMMEDIATE write transactions and
//! numbered migrations. It implements the storage contract of [`zencrypt_core::storage`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod store;

pub use store::*;

// The storage conformance suite builds into this crate's one test binary.
#[cfg(test)]
extern crate self as zencrypt_sqlite;
#[cfg(test)]
#[path = "../tests/conformance.rs"]
mod conformance_tests;
