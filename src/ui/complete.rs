//! Dynamic completion of record and key names: the shell's completion script calls
//! `zencrypt` back (`COMPLETE=bash zencrypt -- ...`), which lists the names of the user
//! whose session is saved for the configured database. Anything missing (no database, no
//! session, an expired one) completes nothing; nothing is written and nothing is printed
//! but the candidates.

use clap_complete::engine::CompletionCandidate;

use zencrypt_core::config;
use zencrypt_core::vault::Vault;

/// What the saved session lets the completer see, or `None`.
fn with_vault<T>(
    f: impl FnOnce(&mut Vault, &zencrypt_core::vault::Session) -> Option<T>,
) -> Option<T> {
    let cfg = config::load(&config::Flags::default(), &config::process_env()).ok()?;
    let mut vault = Vault::open(crate::backend::open(&cfg, false).ok()?, &cfg).ok()?;
    let token = match &cfg.token {
        Some(t) => t.clone(),
        None => crate::ui::session_file::load(&crate::ui::session_file::session_file(
            &cfg.state_dir,
            vault.database_id(),
        ))
        .ok()??,
    };
    let session = vault.authenticate(&token).ok()?;
    f(&mut vault, &session)
}

/// The user's live record names (and the tokens of unnamed records).
pub fn records() -> Vec<CompletionCandidate> {
    with_vault(|v, s| v.record_names(s).ok())
        .unwrap_or_default()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The user's key names.
pub fn keys() -> Vec<CompletionCandidate> {
    with_vault(|v, s| v.key_names(s).ok())
        .unwrap_or_default()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}
