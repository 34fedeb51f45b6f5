//! The `zencrypt` binary: parse, run, exit with the documented code.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let code = zencrypt::cli::main();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
