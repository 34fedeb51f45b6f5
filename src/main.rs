//! The `zencrypt` binary: the two front ends (one-shot commands in [`cli`], the
//! interactive [`shell`]) over the domain in `zencrypt_core`, sharing one [`ui`] for
//! prompts, tables, session files and messages, and [`backend`] to open the database a
//! location names.

#![forbid(unsafe_code)]

mod backend;
mod cli;
mod memory;
mod shell;
mod ui;

fn main() -> std::process::ExitCode {
    let code = cli::main();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
