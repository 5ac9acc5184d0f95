//! Replicas and task leases: which `spectask serve` runs each spec task's work when
//! several share one PostgreSQL database.
//!
//! A lease row names its owner, when it expires, and a fencing number that grows by
//! one on every acquisition. The replica keeps the leases it holds in [`Fences`];
//! every write transaction the replica's own machinery makes (actor `system`, an
//! agent's `session:N`) for a task it holds checks, inside that transaction, that the
//! row still names it with the same fence (`record_and_commit`). So a replica that was
//! paused or partitioned past its lease, and whose task another replica took, has its
//! writes refused ([`StoreError::Fenced`]) even before it notices. A person's writes
//! (actor `token:N`) are never fenced: they are right on any replica.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;

use super::rows::{now_ms, time};
use super::sql::SqlStore;
use super::write_tx::{Unrecorded, WriteTx};
use super::{Actor, Result, StoreError};
use crate::domain::{NewEvent, SpecTaskId};

/// The actor of lease events: they are the cluster's doing, and not fenced (the
/// acquisition itself is what moves the fence).
pub const CLUSTER_ACTOR: &str = "cluster";

#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    pub id: String,
    pub address: String,
    pub max_agents: i64,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub spec_task_id: SpecTaskId,
    pub owner: String,
    pub fence: i64,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A lease this replica just took.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub fence: i64,
    /// The replica that held it before, when it was another one that did not hand
    /// it back (a takeover).
    pub from: Option<String>,
}

/// The leases this process holds, by spec task. Empty and off unless the server
/// runs as a cluster replica.
#[derive(Debug, Default)]
pub struct Fences {
    replica: std::sync::OnceLock<String>,
    held: Mutex<HashMap<SpecTaskId, Held>>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    fence: i64,
    since: DateTime<Utc>,
    /// Another replica has it now: this one's writes for the task are refused until
    /// it forgets the task (after its local work has ended) or takes it again.
    lost: bool,
}

impl Fences {
    /// Turns fencing on for this process, as `replica`.
    pub fn enable(&self, replica: &str) {
        let _ = self.replica.set(replica.to_string());
    }

    pub fn replica(&self) -> Option<&str> {
        self.replica.get().map(String::as_str)
    }

    /// Whether this process may run the task's work: always when it is no cluster
    /// replica, else while it holds the task's lease.
    pub fn owns(&self, spec_task_id: SpecTaskId) -> bool {
        self.replica.get().is_none()
            || self
                .held
                .lock()
                .unwrap()
                .get(&spec_task_id)
                .is_some_and(|h| !h.lost)
    }

    /// Since when this process holds the task (its start when it is no replica).
    pub fn owned_since(&self, spec_task_id: SpecTaskId) -> Option<DateTime<Utc>> {
        self.held
            .lock()
            .unwrap()
            .get(&spec_task_id)
            .filter(|h| !h.lost)
            .map(|h| h.since)
    }

    /// The tasks held (not lost), with their fences.
    pub fn held(&self) -> Vec<(SpecTaskId, i64)> {
        let mut held: Vec<(SpecTaskId, i64)> = self
            .held
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, h)| !h.lost)
            .map(|(t, h)| (*t, h.fence))
            .collect();
        held.sort();
        held
    }

    /// The fence this process holds the task under (lost or not).
    fn fence_of(&self, spec_task_id: SpecTaskId) -> Option<i64> {
        self.held
            .lock()
            .unwrap()
            .get(&spec_task_id)
            .map(|h| h.fence)
    }

    pub(super) fn hold(&self, spec_task_id: SpecTaskId, fence: i64) {
        self.held.lock().unwrap().insert(
            spec_task_id,
            Held {
                fence,
                since: Utc::now(),
                lost: false,
            },
        );
    }

    /// Marks a task as taken by another replica. Returns whether it was held.
    pub fn lose(&self, spec_task_id: SpecTaskId) -> bool {
        match self.held.lock().unwrap().get_mut(&spec_task_id) {
            Some(h) if !h.lost => {
                h.lost = true;
                true
            }
            _ => false,
        }
    }

    /// Drops a task from the map (handed back, or lost and its local work ended).
    pub fn forget(&self, spec_task_id: SpecTaskId) {
        self.held.lock().unwrap().remove(&spec_task_id);
    }

    /// The `(task, fence)` pairs a write by `actor` touching `tasks` must still hold.
    fn to_check(
        &self,
        tasks: impl Iterator<Item = SpecTaskId>,
        actor: Actor<'_>,
    ) -> Vec<(SpecTaskId, i64)> {
        if self.replica.get().is_none() || actor == CLUSTER_ACTOR || actor.starts_with("token:") {
            return Vec::new();
        }
        let held = self.held.lock().unwrap();
        let mut out: Vec<(SpecTaskId, i64)> = tasks
            .filter_map(|t| held.get(&t).map(|h| (t, h.fence)))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl SqlStore {
    /// Inside a write transaction, before its events: refuses it when a task it
    /// touches is held here under a fence the database no longer has. The no-op
    /// `UPDATE` locks the lease row, so a takeover waits for this transaction or this
    /// one sees the takeover.
    pub(super) async fn check_fences<'a>(
        &self,
        tx: &mut WriteTx,
        events: impl Iterator<Item = &'a NewEvent>,
        actor: Actor<'_>,
    ) -> Result<()> {
        let Some(replica) = self.fences.replica() else {
            return Ok(());
        };
        for (task, fence) in self
            .fences
            .to_check(events.filter_map(|e| e.spec_task_id), actor)
        {
            let done = sqlx::query(
                "UPDATE task_leases SET fence = fence WHERE spec_task_id = $1 AND owner = $2 AND fence = $3",
            )
            .bind(task)
            .bind(replica)
            .bind(fence)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Fenced(task));
            }
        }
        Ok(())
    }
}

#[async_trait]
pub trait ClusterStore: Send + Sync + 'static {
    /// The leases this process holds (off unless it is a replica).
    fn fences(&self) -> &Fences;
    /// Records this replica as alive (again), with where it answers.
    async fn register_replica(&self, id: &str, address: &str, max_agents: i64) -> Result<()>;
    /// The replica is alive, and every lease it holds runs `ttl_ms` from now.
    /// Returns the leases the database says it holds.
    async fn heartbeat(&self, id: &str, ttl_ms: i64) -> Result<Vec<Lease>>;
    /// Takes the task's lease when nobody holds it, its holder's lease has expired,
    /// or `replica` held it before (a restart): the fence goes up by one and a
    /// `spec_task.lease_taken` event says so. `None` when another replica holds it.
    async fn claim_lease(
        &self,
        spec_task_id: SpecTaskId,
        replica: &str,
        ttl_ms: i64,
    ) -> Result<Option<Claim>>;
    /// Hands leases back at once (they expire now): all of `replica`'s, or one task's.
    async fn release_leases(&self, replica: &str, task: Option<SpecTaskId>) -> Result<()>;
    /// A clean stop: the replica's leases go back and it is marked stopped.
    async fn stop_replica(&self, id: &str) -> Result<()>;
    async fn list_replicas(&self) -> Result<Vec<Replica>>;
    async fn list_leases(&self) -> Result<Vec<Lease>>;
    /// Before a write outside the database (a merge, a branch published to the
    /// user's repository): `Fenced` unless this replica still holds the task under
    /// its fence. Always fine when it is no replica. (Git's own compare-and-swap on
    /// refs covers the moment between this check and the write.)
    async fn check_lease(&self, spec_task_id: SpecTaskId) -> Result<()>;
}

fn lease(row: &sqlx::any::AnyRow) -> Result<Lease> {
    Ok(Lease {
        spec_task_id: row.try_get("spec_task_id")?,
        owner: row.try_get("owner")?,
        fence: row.try_get("fence")?,
        acquired_at: time(row, "acquired_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

const LEASE_COLUMNS: &str = "spec_task_id, owner, fence, acquired_at, expires_at";

#[async_trait]
impl ClusterStore for SqlStore {
    fn fences(&self) -> &Fences {
        &self.fences
    }

    async fn register_replica(&self, id: &str, address: &str, max_agents: i64) -> Result<()> {
        let now = now_ms();
        let register = sqlx::query(
            "INSERT INTO replicas (id, address, max_agents, started_at, heartbeat_at, stopped_at) \
             VALUES ($1, $2, $3, $4, $4, NULL) ON CONFLICT (id) DO UPDATE SET address = $2, \
             max_agents = $3, started_at = $4, heartbeat_at = $4, stopped_at = NULL",
        )
        .bind(id)
        .bind(address)
        .bind(max_agents)
        .bind(now);
        self.execute_unrecorded(register, Unrecorded::ReplicaHeartbeat)
            .await?;
        Ok(())
    }

    async fn heartbeat(&self, id: &str, ttl_ms: i64) -> Result<Vec<Lease>> {
        let now = now_ms();
        let beat = sqlx::query("UPDATE replicas SET heartbeat_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id);
        self.execute_unrecorded(beat, Unrecorded::ReplicaHeartbeat)
            .await?;
        // Only the leases it still holds: one whose fence moved is another's now.
        let held = self.fences.held();
        // One transaction each, so a replica paused between two renewals holds no
        // lease row's lock.
        for (task, fence) in &held {
            let renew = sqlx::query(
                "UPDATE task_leases SET expires_at = $1 WHERE spec_task_id = $2 AND owner = $3 AND fence = $4",
            )
            .bind(now + ttl_ms)
            .bind(task)
            .bind(id)
            .bind(fence);
            self.execute_unrecorded(renew, Unrecorded::ReplicaHeartbeat)
                .await?;
        }
        let sql = format!("SELECT {LEASE_COLUMNS} FROM task_leases WHERE owner = $1");
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        rows.iter().map(lease).collect()
    }

    async fn claim_lease(
        &self,
        spec_task_id: SpecTaskId,
        replica: &str,
        ttl_ms: i64,
    ) -> Result<Option<Claim>> {
        let project_id = self.task_project(spec_task_id).await?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        // The previous holder, read under the row's lock by the update itself: the
        // update succeeds only where the compare-and-set allows.
        let before =
            sqlx::query("SELECT owner, released_at FROM task_leases WHERE spec_task_id = $1")
                .bind(spec_task_id)
                .fetch_optional(&mut *tx)
                .await?;
        let claimed = match &before {
            None => sqlx::query(
                "INSERT INTO task_leases (spec_task_id, owner, fence, acquired_at, expires_at) \
                 VALUES ($1, $2, 1, $3, $4) ON CONFLICT (spec_task_id) DO NOTHING RETURNING fence",
            )
            .bind(spec_task_id)
            .bind(replica)
            .bind(now)
            .bind(now + ttl_ms)
            .fetch_optional(&mut *tx)
            .await?,
            Some(_) => sqlx::query(
                "UPDATE task_leases SET owner = $1, fence = fence + 1, acquired_at = $2, expires_at = $3, \
                 released_at = NULL WHERE spec_task_id = $4 AND (owner = $1 OR expires_at < $2) RETURNING fence",
            )
            .bind(replica)
            .bind(now)
            .bind(now + ttl_ms)
            .bind(spec_task_id)
            .fetch_optional(&mut *tx)
            .await?,
        };
        let Some(row) = claimed else {
            return Ok(None);
        };
        let fence: i64 = row.try_get("fence")?;
        let from = match before {
            Some(b) => {
                let owner: String = b.try_get("owner")?;
                let released: Option<i64> = b.try_get("released_at")?;
                (owner != replica && released.is_none()).then_some(owner)
            }
            None => None,
        };
        let event = NewEvent {
            project_id: Some(project_id),
            spec_task_id: Some(spec_task_id),
            entity: "spec_task",
            entity_id: Some(spec_task_id.0),
            kind: "spec_task.lease_taken",
            data: json!({ "replica": replica, "fence": fence, "from": from }),
        };
        self.commit_with(tx, event, CLUSTER_ACTOR).await?;
        self.fences.hold(spec_task_id, fence);
        Ok(Some(Claim { fence, from }))
    }

    async fn release_leases(&self, replica: &str, task: Option<SpecTaskId>) -> Result<()> {
        let now = now_ms();
        match task {
            Some(task) => {
                let release = sqlx::query(
                    "UPDATE task_leases SET expires_at = $1, released_at = $1 WHERE owner = $2 AND spec_task_id = $3",
                )
                .bind(now - 1)
                .bind(replica)
                .bind(task);
                self.execute_unrecorded(release, Unrecorded::LeaseRelease)
                    .await?;
                self.fences.forget(task);
            }
            None => {
                let release = sqlx::query(
                    "UPDATE task_leases SET expires_at = $1, released_at = $1 WHERE owner = $2",
                )
                .bind(now - 1)
                .bind(replica);
                self.execute_unrecorded(release, Unrecorded::LeaseRelease)
                    .await?;
                for (task, _) in self.fences.held() {
                    self.fences.forget(task);
                }
            }
        }
        Ok(())
    }

    async fn stop_replica(&self, id: &str) -> Result<()> {
        self.release_leases(id, None).await?;
        let stopped = sqlx::query("UPDATE replicas SET stopped_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id);
        self.execute_unrecorded(stopped, Unrecorded::ReplicaHeartbeat)
            .await?;
        Ok(())
    }

    async fn list_replicas(&self) -> Result<Vec<Replica>> {
        let rows = sqlx::query(
            "SELECT id, address, max_agents, started_at, heartbeat_at, stopped_at FROM replicas ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let stopped: Option<i64> = row.try_get("stopped_at")?;
                Ok(Replica {
                    id: row.try_get("id")?,
                    address: row.try_get("address")?,
                    max_agents: row.try_get("max_agents")?,
                    started_at: time(row, "started_at")?,
                    heartbeat_at: time(row, "heartbeat_at")?,
                    stopped_at: stopped.and_then(DateTime::from_timestamp_millis),
                })
            })
            .collect()
    }

    async fn check_lease(&self, spec_task_id: SpecTaskId) -> Result<()> {
        let Some(replica) = self.fences.replica() else {
            return Ok(());
        };
        let Some(fence) = self.fences.fence_of(spec_task_id) else {
            return Err(StoreError::Fenced(spec_task_id));
        };
        let row = sqlx::query(
            "SELECT 1 AS held FROM task_leases WHERE spec_task_id = $1 AND owner = $2 AND fence = $3",
        )
        .bind(spec_task_id)
        .bind(replica)
        .bind(fence)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(_) => Ok(()),
            None => Err(StoreError::Fenced(spec_task_id)),
        }
    }

    async fn list_leases(&self) -> Result<Vec<Lease>> {
        let sql = format!("SELECT {LEASE_COLUMNS} FROM task_leases ORDER BY spec_task_id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(lease).collect()
    }
}
