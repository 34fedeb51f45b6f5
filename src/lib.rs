//! zencrypt: a terminal vault for encryption keys and secrets.
//!
//! The library is the product: domain modules ([`accounts`], [`audit`], [`authz`],
//! [`session`], [`crypto`], [`storage`], [`config`]) know nothing of the terminal; the
//! [`cli`] and [`shell`] modules are the two ways in, and both call the same domain
//! functions on [`vault::Vault`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accounts;
pub mod audit;
pub mod authz;
pub mod cipher;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod dbcare;
pub mod duration;
pub mod error;
pub mod fsutil;
pub mod hashing;
pub mod integrity;
pub mod interrupt;
pub mod keys;
pub mod memory;
pub mod model;
pub mod records;
pub mod session;
pub mod shell;
pub mod storage;
pub mod usage;
pub mod vault;
pub mod witness;

pub use error::{Error, Result};
