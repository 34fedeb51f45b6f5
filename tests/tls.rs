//! TLS to a PostgreSQL server: a private cluster of the test's own (initdb in a temp dir
//! as the unprivileged `postgres` user, a CA and server certificate made for the test, a
//! port of its own) that accepts only TLS connections.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A running cluster, stopped and removed on drop.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("the program runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The directory of the server's programs (initdb, pg_ctl), as pg_config reports it.
fn server_bin() -> PathBuf {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("pg_config runs");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").args(args).current_dir(dir));
}

/// Makes a CA and a server certificate for localhost and 127.0.0.1 signed by it, in
/// `dir`; returns the CA's certificate.
fn certificates(dir: &Path, ca_name: &str) -> PathBuf {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut req = vec!["req", "-x509", "-days", "2", "-subj"];
    let subject = format!("/CN={ca_name}");
    req.push(&subject);
    req.extend(ec);
    req.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &req);
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext",
            "-out",
            "server.crt",
        ],
    );
    dir.join("ca.pem")
}

impl Cluster {
    /// Starts a cluster that takes only TLS connections over TCP; `None` where this
    /// process cannot run the server as another user (not root).
    fn start() -> Option<(Cluster, PathBuf)> {
        if !rustix::process::geteuid().is_root() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let ca = certificates(dir.path(), "zencrypt test CA");
        let bin = server_bin();
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path()));
        run(Command::new("chmod").arg("0755").arg(dir.path()));
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data));
        let port = free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            dir.path().display(),
            dir.path().join("server.crt").display(),
            dir.path().join("server.key").display(),
        );
        let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pg_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pg_conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path()));
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .args(["-w", "-l"])
            .arg(dir.path().join("log"))
            .arg("-D")
            .arg(&data)
            .arg("start"));
        Some((Cluster { dir, port, bin }, ca))
    }

    fn url(&self, params: &str) -> String {
        format!(
            "postgres://postgres@localhost:{}/postgres?{params}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-w", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

#[test]
fn tls_is_verified_required_or_refused_as_the_url_says() {
    if pg_server().is_none() {
        return; // The PostgreSQL half of the suite (ZENCRYPT_TEST_DB_URL) runs this.
    }
    let Some((cluster, ca)) = Cluster::start() else {
        assert!(
            !in_ci(),
            "the TLS test needs root to run a private PostgreSQL cluster"
        );
        return;
    };
    let env = Env::sqlite().with("ZENCRYPT_AUDIT_KEY", PG_AUDIT_KEY);
    let verified = cluster.url(&format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    env.run(
        &[
            "--db",
            &verified,
            "signup",
            "--username",
            "alice",
            "--password-stdin",
        ],
        format!("{}\n", pw("alice")).as_bytes(),
    )
    .ok();
    let status = env
        .run(&["--db", &verified, "--json", "db", "status"], b"")
        .ok()
        .json();
    assert_eq!(status["backend"], "postgresql");
    assert_eq!(status["tls"], "on (verified)", "{status}");
    // Encrypted without checking the certificate, when asked for.
    let required = cluster.url("sslmode=require");
    let status = env
        .run(&["--db", &required, "--json", "db", "status"], b"")
        .ok()
        .json();
    assert_eq!(status["tls"], "on (not verified)", "{status}");
    // A certificate from another CA is refused before anything is sent.
    let other = tempfile::tempdir().unwrap();
    let other_ca = certificates(other.path(), "someone else's CA");
    let wrong = cluster.url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other_ca.display()
    ));
    let r = env.run(&["--db", &wrong, "db", "status"], b"");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("TLS handshake"), "{}", r.stderr);
    assert!(r.stderr.contains("sslrootcert"), "{}", r.stderr);
    // This server takes TLS only: a plain connection is refused.
    let plain = cluster.url("sslmode=disable");
    let r = env.run(&["--db", &plain, "db", "status"], b"");
    assert_eq!(r.code, 1, "{}", r.stderr);
}
