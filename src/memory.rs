//! The process's memory: no core dumps, and no swap where the memory-lock limit allows.
//! Applied once, at the start of every command.

/// Turns core dumps off for this process (a dump would hold whatever keys and plaintext
/// were in memory): both the core size limit (0, hard and soft) and the dumpable flag
/// (which also keeps other processes of the same user from attaching a debugger). Then
/// locks its memory where that is allowed (see `lock_memory`). Best effort: a refusal
/// leaves the process as it was.
pub fn protect_memory() {
    use rustix::process::{DumpableBehavior, Resource, Rlimit};
    let _ = rustix::process::setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    let _ = rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable);
    lock_memory();
}

/// Keeps the process's memory, keys included, out of swap where the memory-lock limit
/// allows it: with no limit (root, or `ulimit -l unlimited`), every page is locked as it
/// is first touched. Under a limit (8 MiB for ordinary users by default) nothing is
/// locked: locking every future page would make allocations past the limit fail.
/// Best effort: a refusal leaves the process as it was.
fn lock_memory() {
    use rustix::mm::MlockAllFlags;
    use rustix::process::{Resource, getrlimit};
    if getrlimit(Resource::Memlock).current.is_none() {
        let _ = rustix::mm::mlockall(
            MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT,
        );
    }
}
