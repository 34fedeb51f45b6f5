//! Concurrent writers against one database.

mod common;
use common::*;

#[test]
fn six_processes_putting_forty_records_each_lose_nothing() {
    let env = Env::new();
    env.signup("alice");
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let mut c = env.command();
            c.arg("--no-input");
            let script = (0..40)
                .map(|i| {
                    format!("printf 'w{w}-v{i}' | \"$Z\" data put --name w{w}-r{i} -q || exit 1")
                })
                .collect::<Vec<_>>()
                .join("\n");
            let mut sh = std::process::Command::new("sh");
            sh.arg("-c").arg(script).env_clear();
            for (k, v) in c.get_envs() {
                if let Some(v) = v {
                    sh.env(k, v);
                }
            }
            sh.env("Z", c.get_program()).env("PATH", "/usr/bin:/bin");
            sh.current_dir(env.dir.path());
            sh.spawn().unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success(), "a writer failed");
    }
    let list = env.run(&["data", "list", "--json"], b"");
    list.ok();
    assert_eq!(list.json().as_array().unwrap().len(), 240);
    assert_eq!(env.run(&["data", "get", "w3-r17"], b"").stdout, "w3-v17");
    let v = env.run(&["audit", "verify", "--json"], b"");
    v.ok();
    assert_eq!(v.json()["ok"], true);
    let (n, max): (i64, i64) = env
        .sql()
        .query_row("SELECT count(*), max(seq) FROM audit_log", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(n, max, "seq is contiguous");
}
