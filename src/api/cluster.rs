//! `GET /api/v1/cluster`: the replicas sharing this database, the tasks each holds
//! and how fresh their leases are; what `spectask cluster status` prints.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiResult;
use super::extract::Json;
use crate::domain::ids::*;
use crate::orchestrator::cluster::needs_owner;
use crate::store::SpecTaskFilter;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterStatus {
    /// This server's replica id; `null` when it runs alone (no `--cluster`).
    pub replica: Option<String>,
    /// How long a lease lasts without a heartbeat, in ms (`null` when alone).
    pub lease_ttl_ms: Option<i64>,
    pub replicas: Vec<ReplicaStatus>,
    /// Spec tasks in planning or implementation that no live lease covers: they wait
    /// for a replica with room.
    #[schema(value_type = Vec<i64>)]
    pub unowned: Vec<SpecTaskId>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplicaStatus {
    pub id: String,
    /// Where it answers.
    pub address: String,
    pub max_agents: i64,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: i64,
    /// `running` (heartbeat within the lease time), `stopped` (stopped cleanly) or
    /// `lost` (no heartbeat for a lease time: dead, paused or cut off).
    pub state: String,
    pub tasks: Vec<LeaseStatus>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LeaseStatus {
    pub spec_task_id: i64,
    /// Grows by one on every acquisition.
    pub fence: i64,
    pub acquired_at: DateTime<Utc>,
    /// Milliseconds since this replica took the task.
    pub held_ms: i64,
    /// Milliseconds until the lease expires (negative: expired).
    pub expires_in_ms: i64,
}

/// The cluster: replicas, their tasks and lease ages.
#[utoipa::path(get, path = "/cluster", tag = "operations",
    responses((status = 200, body = ClusterStatus)))]
pub async fn status(State(state): State<AppState>) -> ApiResult<Json<ClusterStatus>> {
    let now = Utc::now();
    let leases = state.store.list_leases().await?;
    let ttl = state
        .cluster
        .as_ref()
        .map(|c| c.settings.lease_ttl.as_millis() as i64);
    let live_after =
        chrono::Duration::milliseconds(ttl.unwrap_or(crate::config::DEFAULT_LEASE_TTL_MS as i64));
    let replicas = state
        .store
        .list_replicas()
        .await?
        .into_iter()
        .map(|r| {
            let age = now - r.heartbeat_at;
            let tasks = leases
                .iter()
                .filter(|l| l.owner == r.id && l.expires_at > now)
                .map(|l| LeaseStatus {
                    spec_task_id: l.spec_task_id.0,
                    fence: l.fence,
                    acquired_at: l.acquired_at,
                    held_ms: (now - l.acquired_at).num_milliseconds(),
                    expires_in_ms: (l.expires_at - now).num_milliseconds(),
                })
                .collect();
            let state = if r.stopped_at.is_some() {
                "stopped"
            } else if age < live_after {
                "running"
            } else {
                "lost"
            };
            ReplicaStatus {
                heartbeat_age_ms: age.num_milliseconds(),
                state: state.into(),
                id: r.id,
                address: r.address,
                max_agents: r.max_agents,
                started_at: r.started_at,
                heartbeat_at: r.heartbeat_at,
                tasks,
            }
        })
        .collect();
    let mut unowned = Vec::new();
    if state.cluster.is_some() {
        let filter = SpecTaskFilter {
            limit: 500,
            ..Default::default()
        };
        for task in state.store.list_spec_tasks(&filter).await?.0 {
            let covered = leases
                .iter()
                .any(|l| l.spec_task_id == task.id && l.expires_at > now);
            if needs_owner(task.status) && !covered {
                unowned.push(task.id);
            }
        }
        unowned.sort();
    }
    Ok(Json(ClusterStatus {
        replica: state.cluster.as_ref().map(|c| c.replica().to_string()),
        lease_ttl_ms: ttl,
        replicas,
        unowned,
    }))
}
