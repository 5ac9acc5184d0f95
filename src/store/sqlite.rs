//! The SQLite backend: one file in the data dir, WAL mode so readers never wait for
//! the writer, foreign keys on, and a busy timeout so concurrent writers queue up
//! instead of failing.

use anyhow::Context;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::sql::{Backend, SqlStore};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(super) async fn connect(url: &str) -> anyhow::Result<SqlStore> {
    sqlx::any::install_default_drivers();
    // `mode=rwc` creates the file on first start.
    let url = if url.contains('?') {
        url.to_string()
    } else {
        format!("{url}?mode=rwc")
    };
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 15000; PRAGMA synchronous = NORMAL;",
                )
                .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .with_context(|| format!("opening SQLite database {url}"))?;
    // WAL is a property of the file, so setting it once covers every connection.
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&pool)
        .await
        .context("enabling WAL mode")?;
    MIGRATOR
        .run(&pool)
        .await
        .context("applying SQLite migrations")?;
    Ok(SqlStore::new(pool, Backend::Sqlite))
}
