//! What both front ends share: prompts ([`prompt`]), reading input ([`input`]), writing
//! output and tables ([`output`]), files and progress ([`files`]) and the saved session
//! token ([`session_file`]). The one-shot commands and the shell use this module instead
//! of importing each other.

pub mod clip;
pub mod complete;
pub mod edit;
pub mod files;
pub mod input;
pub mod output;
pub mod prompt;
pub mod session_file;
pub mod transfer;
pub mod views;

/// Variables no program zencrypt starts inherits (a command for `run`, an editor, gpg, the
/// clipboard helper): the session bearer token, the audit key and the session-signing
/// secret. None of them needs one, and an editor plugin has no business with them.
pub const NOT_INHERITED: [&str; 3] = [
    "ZENCRYPT_TOKEN",
    "ZENCRYPT_AUDIT_KEY",
    "ZENCRYPT_JWT_SECRET",
];

/// Removes [`NOT_INHERITED`] from a child's environment.
pub fn scrub_child_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for name in NOT_INHERITED {
        cmd.env_remove(name);
    }
    cmd
}
