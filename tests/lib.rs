//! The end-to-end suite: every test runs the built `zencrypt` binary as a user would, in
//! its own temporary HOME, with the environment scrubbed. One test binary, so a fresh
//! `cargo test` links the suite once.

mod common;

mod accounts;
mod audit_key;
mod audit_roles;
mod everyday;
mod faults;
mod groups;
mod hostile_input;
mod keys_crypto;
mod local_environment;
mod many_writers;
mod migrate;
mod offboarding;
mod records;
mod recovery;
mod reliability;
mod reports;
mod services;
mod sessions;
mod sharing;
mod shell_pty;
mod storage;
mod tamper;
mod team;
mod tls;
mod writes;
