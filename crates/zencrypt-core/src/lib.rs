//! zencrypt's core: the model, the cryptography, the storage contract and the domain
//! services every front end calls on [`vault::Vault`]. Nothing here knows of a terminal,
//! of command-line flags or of a particular database; the `zencrypt` binary supplies
//! those (see ARCHITECTURE.md).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod audit;
pub mod authz;
pub mod chain;
pub mod cipher;
pub mod config;
pub mod crypto;
pub mod dbcare;
pub mod dburl;
pub mod duration;
pub mod error;
pub mod events;
pub mod fsutil;
pub mod generate;
pub mod glob;
pub mod hashing;
pub mod ids;
pub mod integrity;
pub mod interrupt;
pub mod keys;
pub mod model;
pub mod parallel;
pub mod records;
pub mod recovery;
pub mod services;
pub mod session;
pub mod sharing;
pub mod storage;
pub mod template;
pub mod text;
pub mod totp;
pub mod usage;
pub mod vault;
pub mod witness;

pub use error::{Error, Result};

// The unit tests of the services run against the real SQLite backend: its source is
// compiled into this crate's test build (a dev-dependency on the backend crate would
// link a second copy of this crate), and it names this crate as its dependents do.
#[cfg(test)]
extern crate self as zencrypt_core;
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../zencrypt-sqlite/src/store.rs"]
mod sqlite_backend;
