//! A real PostgreSQL server for the tests: Debian's `postgresql` package,
//! `initdb` and `pg_ctl` in a temporary directory, run as the `postgres` user
//! (the server refuses root), listening on a free loopback port with trust
//! authentication. Stopped (immediately) and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The role `records` that may read the database `office` and nothing else, as
/// docs/ledger.md sets up the records office's page.
pub const READ_ONLY_ROLE: &str = "CREATE ROLE records LOGIN;
     GRANT CONNECT ON DATABASE office TO records;
     GRANT USAGE ON SCHEMA public TO records;
     GRANT SELECT ON ALL TABLES IN SCHEMA public TO records;";

pub struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// The server's programs, e.g. /usr/lib/postgresql/15/bin.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

fn as_postgres(program: &Path) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program);
    command
}

fn run(mut command: Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Server {
    /// Starts a fresh server; `None` (with a note) where PostgreSQL or root is missing.
    pub fn start() -> Option<Server> {
        let ci = std::env::var_os("CI").is_some();
        let (Some(bin), true) = (bin_dir(), nix::unistd::geteuid().is_root()) else {
            assert!(!ci, "CI runs the PostgreSQL tests as root: .ci/run installs postgresql");
            eprintln!("skipping: PostgreSQL (Debian's postgresql package) and root are needed");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("certwipe-pg-").tempdir_in("/tmp").unwrap();
        run({
            let mut c = Command::new("chown");
            c.args(["postgres:postgres"]).arg(dir.path());
            c
        });
        let data = dir.path().join("data");
        run({
            let mut c = as_postgres(&bin.join("initdb"));
            c.arg("-D").arg(&data).args(["-A", "trust", "-U", "certwipe", "-E", "UTF8", "--no-sync"]);
            c
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Server { dir, bin, port };
        server.pg_ctl_start();
        Some(server)
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        run({
            let mut c = as_postgres(&self.bin.join("pg_ctl"));
            c.arg("-D").arg(self.dir.path().join("data")).arg("-l").arg(self.dir.path().join("log"));
            c.args(["-w", "-o", &options, "start"]);
            c
        });
    }

    /// Stops the server at once, as a crash or a pulled network cable would.
    pub fn stop_now(&self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// The URL of `database` for `user` (the superuser `certwipe` made by initdb).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL as the superuser in `database`.
    pub fn sql(&self, database: &str, sql: &str) {
        let mut client = postgres::Client::connect(&self.url("certwipe", database), postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// A new, empty database; its URL for the superuser.
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url("certwipe", name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}
