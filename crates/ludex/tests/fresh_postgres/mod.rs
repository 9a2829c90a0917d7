//! A fresh PostgreSQL database per test run, on the server `LUDEX_TEST_POSTGRES_URL` names
//! (`scripts/with-postgres` starts one, or points at the CI service container).

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection};
use std::str::FromStr;

#[path = "../skip/mod.rs"]
mod skip;

const SERVER_VAR: &str = "LUDEX_TEST_POSTGRES_URL";

/// The server's URL. Without one, the PostgreSQL tests are skipped loudly, except on CI
/// (`CI=true`), where a missing server is a failure.
pub fn server(suite: &str) -> Option<String> {
    skip::server(
        SERVER_VAR,
        suite,
        "PostgreSQL server",
        "scripts/with-postgres",
    )
}

/// A database created for one test and dropped by [`FreshDatabase::drop`].
pub struct FreshDatabase {
    admin: PgConnectOptions,
    /// The new database's name.
    pub name: String,
    /// The URL of the new database.
    pub url: String,
}

impl FreshDatabase {
    pub async fn create(server: &str) -> Self {
        let admin = PgConnectOptions::from_str(server).expect("a valid server URL");
        let name = format!(
            "ludex_test_{:016x}",
            getrandom::u64().expect("random bytes")
        );
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to the test server");
        // The name is ours: letters, digits and underscores only.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let url = admin.clone().database(&name).to_url_lossy().to_string();
        Self { admin, name, url }
    }

    /// Drops the database, closing any connection still open to it.
    pub async fn drop(self) {
        let mut conn = PgConnection::connect_with(&self.admin)
            .await
            .expect("connect to the test server");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .expect("drop the test database");
        conn.close().await.ok();
    }
}
