//! What both front ends share: prompts ([`prompt`]), reading input ([`input`]), writing
//! output and tables ([`output`]), files and progress ([`files`]) and the saved session
//! token ([`session_file`]). The one-shot commands and the shell use this module instead
//! of importing each other.

pub mod clip;
pub mod edit;
pub mod files;
pub mod input;
pub mod output;
pub mod prompt;
pub mod session_file;
pub mod transfer;
pub mod views;
