//! The PostgreSQL backend, for teams and for several server replicas sharing one
//! database.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::sql::{AbortOnDrop, Backend, EVENTS_CHANNEL, SqlStore, announce};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub(super) async fn connect(url: &str) -> anyhow::Result<SqlStore> {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", redact(url)))?;
    MIGRATOR
        .run(&pool)
        .await
        .context("applying PostgreSQL migrations")?;
    let mut store = SqlStore::new(pool.clone(), Backend::Postgres);
    let task = tokio::spawn(follow(url.to_string(), pool, store.last_event.clone()));
    store.follower = Some(Arc::new(AbortOnDrop(task.abort_handle())));
    Ok(store)
}

/// Listens for the events other replicas commit (`NOTIFY` on [`EVENTS_CHANNEL`]) and
/// wakes this process's followers of the log: the WebSocket hub, long polls and
/// the background loops. After each (re)connection it reads the newest id, so what
/// was committed while it was not listening is seen too.
async fn follow(url: String, pool: AnyPool, last_event: Arc<watch::Sender<i64>>) {
    let mut failing = false;
    loop {
        let listener = async {
            let mut listener = PgListener::connect(&url).await?;
            listener.listen(EVENTS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match listener {
            Ok(l) => l,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "listening for other replicas' events failed; retrying every second");
                    failing = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // From here the listener reconnects by itself (`try_recv`).
        loop {
            catch_up(&pool, &last_event).await;
            // `None`: the connection was lost and is made again on the next call;
            // what was notified meanwhile is read back by `catch_up`.
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        if let Ok(id) = n.payload().parse::<i64>() {
                            announce(&last_event, id);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "the event listener's connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    }
}

async fn catch_up(pool: &AnyPool, last_event: &watch::Sender<i64>) {
    let newest: Result<i64, sqlx::Error> =
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(pool)
            .await;
    if let Ok(id) = newest {
        announce(last_event, id);
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://bob:secret@db:5432/x"),
            "postgres://bob:***@db:5432/x"
        );
        assert_eq!(super::redact("postgres://db/x"), "postgres://db/x");
    }
}
