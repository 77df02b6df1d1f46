//! The test server: `PGSYNC_TEST_URL` (default postgres://postgres@127.0.0.1:5432/postgres)
//! and `TestDb`, a uniquely named database dropped (after terminating its sessions) on Drop.

use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The admin URL of the test server.
pub fn admin_url() -> String {
    std::env::var("PGSYNC_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The admin URL with another database name.
pub fn url_for(dbname: &str) -> String {
    let base = admin_url();
    let (head, tail) = base.split_at(base.find("://").map(|i| i + 3).unwrap_or(0));
    let authority_end = tail.find('/').unwrap_or(tail.len());
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{head}{}/{dbname}{query}", &tail[..authority_end])
}

/// A URL for `dbname` that logs in as `user` (no password) instead of the admin user.
pub fn url_as(user: &str, dbname: &str) -> String {
    let url = url_for(dbname);
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[start..];
    let host_start = rest.find('@').map(|i| i + 1).unwrap_or(0);
    format!("{}{user}@{}", &url[..start], &rest[host_start..])
}

/// Connects to the admin database.
pub fn admin() -> Client {
    Client::connect(&admin_url(), NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to the test server {} ({e}); start PostgreSQL or set PGSYNC_TEST_URL",
            admin_url()
        )
    })
}

/// A database that exists for one test.
pub struct TestDb {
    /// Its name.
    pub name: String,
}

impl TestDb {
    /// Creates `pgsync_t_<pid>_<n>_<tag>`.
    pub fn new(tag: &str) -> TestDb {
        let name = format!(
            "pgsync_t_{}_{}_{tag}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = admin();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        TestDb { name }
    }

    /// Connection URL.
    pub fn url(&self) -> String {
        url_for(&self.name)
    }

    /// A fresh client.
    pub fn client(&self) -> Client {
        Client::connect(&self.url(), NoTls).unwrap()
    }

    /// Runs SQL (several statements allowed).
    pub fn exec(&self, sql: &str) {
        self.client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// One i64 from a query.
    pub fn scalar_i64(&self, sql: &str) -> i64 {
        self.client()
            .query_one(sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Ok(mut admin) = Client::connect(&admin_url(), NoTls) else {
            return;
        };
        let _ = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&self.name],
        );
        if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\"", self.name)) {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}
