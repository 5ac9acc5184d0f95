//! The store's write transaction, [`WriteTx`], and the only ways to commit one.
//!
//! The rule: **a write commits with its events, or says why it has none.** A
//! `WriteTx` wraps the sqlx transaction in a private field, so nothing outside this
//! module can call its `commit`. It commits only through
//!
//! - the events path, [`SqlStore::commit_with`], [`SqlStore::commit_events`] and
//!   `commit_with_admissions`, which all end in `record_and_commit`: check the
//!   cluster fences, insert the `events` rows last, `pg_notify`, commit, announce;
//! - [`WriteTx::commit_without_events`], which takes an [`Unrecorded`]: the closed
//!   list of the writes that are not state changes a person or a replica follows,
//!   each with the reason it has no event.
//!
//! Dropping a `WriteTx` rolls it back, as sqlx does. It derefs to the connection, so
//! statements run on it as `.execute(&mut *tx)` (or `&mut **tx` through a `&mut`).
//!
//! Every write the store makes goes through a `WriteTx`, single statements too (so
//! the writes without events are all named in [`Unrecorded`]); the pool itself is
//! for reads.

use std::ops::{Deref, DerefMut};

use sqlx::any::{AnyArguments, AnyQueryResult};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Row};

use super::rows::now_ms;
use super::sql::{Backend, SqlStore, announce};
use super::{Actor, Result};
use crate::domain::NewEvent;

/// The advisory-lock key PostgreSQL writers take before inserting an event, so event
/// ids commit in increasing order (see migrations/postgres/0001_init.sql).
const EVENTS_LOCK: i64 = 0x5350_4543_5441_534b; // "SPECTASK"

/// The PostgreSQL channel each event commit notifies, with the newest id as payload.
pub(super) const EVENTS_CHANNEL: &str = "spectask_events";

/// A write transaction of the store. See the module documentation for the rule.
#[must_use = "a WriteTx rolls back when dropped: commit it with its events"]
pub(super) struct WriteTx(sqlx::Transaction<'static, Any>);

/// Why a write commits without an event: the only writes that may. Each is a
/// bookkeeping write, not a change of anything the event log describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unrecorded {
    /// An agent's CPU and memory sample (`agent_instances`' latest figures and the
    /// bounded `agent_samples` window): taken every few seconds, it would flood the
    /// log, and nothing follows it but the chart.
    ResourceSample,
    /// A one-time sign-in link's code hash: a secret (its hash opens a browser
    /// session), so it stays out of the log; the sign-in it makes has its event
    /// (`token.signed_in`).
    SignInLink,
    /// A cluster replica registering, beating, or marked stopped, and the renewal of
    /// the leases it holds: liveness, every tick. The changes of who runs a task
    /// have their events (`spec_task.lease_taken`).
    ReplicaHeartbeat,
    /// A replica handing its leases back (they expire now): the next holder's
    /// `spec_task.lease_taken` records the handover.
    LeaseRelease,
    /// The claim of a webhook delivery attempt (its due time moved past the
    /// attempt's timeout): the attempt's outcome has its event.
    DeliveryClaim,
}

impl WriteTx {
    pub(super) async fn begin(pool: &AnyPool) -> Result<WriteTx> {
        Ok(WriteTx(pool.begin().await?))
    }

    /// Commits a write that has no event, for the reason `why` names.
    pub(super) async fn commit_without_events(self, why: Unrecorded) -> Result<()> {
        self.0.commit().await?;
        tracing::trace!(?why, "committed a write without events");
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.0
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.0
    }
}

impl SqlStore {
    pub(super) async fn begin(&self) -> Result<WriteTx> {
        WriteTx::begin(&self.pool).await
    }

    /// Runs one statement in a write transaction of its own and commits it without
    /// events, for the reason `why` names (like autocommit, but named).
    pub(super) async fn execute_unrecorded<'q>(
        &self,
        query: Query<'q, Any, AnyArguments<'q>>,
        why: Unrecorded,
    ) -> Result<AnyQueryResult> {
        let mut tx = self.begin().await?;
        let done = query.execute(&mut *tx).await?;
        tx.commit_without_events(why).await?;
        Ok(done)
    }

    /// Writes the event of a change inside the change's transaction. On PostgreSQL
    /// the advisory lock taken here is held until commit, so this must be the last
    /// statement that can wait on a lock in its transaction.
    async fn record(&self, tx: &mut WriteTx, ev: NewEvent, actor: Actor<'_>) -> Result<i64> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1)")
                .bind(EVENTS_LOCK)
                .execute(&mut **tx)
                .await?;
        }
        let row = sqlx::query(
            "INSERT INTO events (project_id, spec_task_id, entity, entity_id, kind, data, actor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(ev.project_id)
        .bind(ev.spec_task_id)
        .bind(ev.entity)
        .bind(ev.entity_id)
        .bind(ev.kind)
        .bind(ev.data.to_string())
        .bind(actor)
        .bind(now_ms())
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Records the change's event as the last statement and commits.
    pub(super) async fn commit_with(
        &self,
        tx: WriteTx,
        event: NewEvent,
        actor: Actor<'_>,
    ) -> Result<()> {
        self.commit_with_admissions(tx, event, actor, Vec::new())
            .await
    }

    /// Commits a transaction that made several changes, with their events in order.
    pub(super) async fn commit_events(
        &self,
        tx: WriteTx,
        events: Vec<NewEvent>,
        actor: Actor<'_>,
    ) -> Result<()> {
        self.record_and_commit(tx, None, events, actor).await
    }

    /// Like [`SqlStore::commit_with`], followed by the events of the queued tasks the
    /// change let into their phase (the system's doing, not the caller's).
    pub(super) async fn commit_with_admissions(
        &self,
        tx: WriteTx,
        event: NewEvent,
        actor: Actor<'_>,
        admitted: Vec<NewEvent>,
    ) -> Result<()> {
        self.commit_all_with_admissions(tx, vec![event], actor, admitted)
            .await
    }

    /// [`SqlStore::commit_with_admissions`] for a change of several events.
    pub(super) async fn commit_all_with_admissions(
        &self,
        mut tx: WriteTx,
        events: Vec<NewEvent>,
        actor: Actor<'_>,
        admitted: Vec<NewEvent>,
    ) -> Result<()> {
        self.check_fences(&mut tx, events.iter(), actor).await?;
        let mut last = None;
        for event in events {
            last = Some(self.record(&mut tx, event, actor).await?);
        }
        self.record_and_commit(tx, last, admitted, "system").await
    }

    /// Records `events` after those already recorded in `tx` (the newest being
    /// `last`), commits, and announces the newest id.
    async fn record_and_commit(
        &self,
        mut tx: WriteTx,
        mut last: Option<i64>,
        events: Vec<NewEvent>,
        actor: Actor<'_>,
    ) -> Result<()> {
        // Before the events (whose lock must come last): a replica's own writes for
        // a task it no longer leases are refused here.
        self.check_fences(&mut tx, events.iter(), actor).await?;
        for event in events {
            last = Some(self.record(&mut tx, event, actor).await?);
        }
        // Other replicas on the database learn of it at commit (a notification is
        // delivered only if the transaction commits). The event table stays the
        // truth: a missed notification costs latency, never an event.
        if let (Some(last), Backend::Postgres) = (last, self.backend()) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(EVENTS_CHANNEL)
                .bind(last.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.0.commit().await?;
        if let Some(last) = last {
            announce(&self.last_event, last);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sqlx::Row;

    use super::Unrecorded;
    use crate::domain::NewEvent;
    use crate::store::{SqlStore, Store};

    async fn store() -> (tempfile::TempDir, SqlStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        (dir, crate::store::connect(&url).await.unwrap())
    }

    async fn replicas(store: &SqlStore) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM replicas")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    }

    async fn write(store: &SqlStore) -> super::WriteTx {
        let mut tx = store.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO replicas (id, address, max_agents, started_at, heartbeat_at) \
             VALUES ('r', 'a', 1, 0, 0)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx
    }

    /// A write commits with its events or with a named reason; dropped, it is undone.
    #[tokio::test]
    async fn a_write_commits_with_its_events_or_a_reason_and_drops_to_nothing() {
        let (_dir, store) = store().await;
        drop(write(&store).await);
        assert_eq!(replicas(&store).await, 0, "a dropped WriteTx rolls back");

        write(&store)
            .await
            .commit_without_events(Unrecorded::ReplicaHeartbeat)
            .await
            .unwrap();
        assert_eq!(replicas(&store).await, 1);
        assert_eq!(
            store.last_event_id().await.unwrap(),
            0,
            "and records nothing"
        );

        let mut tx = store.begin().await.unwrap();
        sqlx::query("UPDATE replicas SET heartbeat_at = 1")
            .execute(&mut *tx)
            .await
            .unwrap();
        let event = NewEvent {
            project_id: None,
            spec_task_id: None,
            entity: "replica",
            entity_id: None,
            kind: "test.written",
            data: json!({}),
        };
        store.commit_with(tx, event, "system").await.unwrap();
        let events = store.list_events(0, None, 10).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "test.written");
        assert_eq!(*store.subscribe_events().borrow(), events[0].id);
    }
}
