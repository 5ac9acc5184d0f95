//! Running as one replica of a cluster on PostgreSQL (`serve --cluster`): this
//! replica's heartbeat, the task leases it takes and renews, and what it does when it
//! loses one.
//!
//! A spec task in `planning` or `implementing` needs an owner; only the owner's
//! planner and implementer act on it (they ask [`Fences::owns`]). A step
//! ([`Cluster::run_once`]) renews this replica's leases, notices the ones another
//! replica took (its agent is stopped; its writes were already refused by the
//! fence), hands back tasks that left those phases, and claims tasks that have no
//! live owner while it has room: fewer tasks than `max_agents`, and no more than the
//! least loaded replica that has room, so new work spreads. A replica that stops
//! cleanly hands everything back at once; one that dies loses its tasks when their
//! leases expire, and a replica that takes one over resumes it the way a restart
//! does (the implementer's orphan sessions, in worktrees made again from the
//! session branches the user's repository holds).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::agents::manager::AgentManager;
use crate::config::ClusterSettings;
use crate::domain::ids::*;
use crate::domain::{SpecTask, SpecTaskStatus};
use crate::store::{SpecTaskFilter, Store, StoreError};

/// How long a lost task stays fenced here after its agent was stopped: the
/// session drivers still running for it end within this (their writes are refused).
const LOST_LINGER: Duration = Duration::from_secs(30);

pub struct Cluster {
    store: Arc<dyn Store>,
    agents: Arc<AgentManager>,
    pub settings: ClusterSettings,
    takeovers: AtomicU64,
    lost: std::sync::Mutex<HashMap<SpecTaskId, Instant>>,
}

/// What one step did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClusterStep {
    pub claimed: Vec<SpecTaskId>,
    pub lost: Vec<SpecTaskId>,
    pub released: Vec<SpecTaskId>,
}

/// Whether a task in this status needs a replica to run its work.
pub fn needs_owner(status: SpecTaskStatus) -> bool {
    matches!(
        status,
        SpecTaskStatus::Planning | SpecTaskStatus::Implementing
    )
}

impl Cluster {
    pub fn new(
        store: Arc<dyn Store>,
        agents: Arc<AgentManager>,
        settings: ClusterSettings,
    ) -> Arc<Cluster> {
        store.fences().enable(&settings.replica_id);
        Arc::new(Cluster {
            store,
            agents,
            settings,
            takeovers: AtomicU64::new(0),
            lost: Default::default(),
        })
    }

    pub fn replica(&self) -> &str {
        &self.settings.replica_id
    }

    fn ttl_ms(&self) -> i64 {
        self.settings.lease_ttl.as_millis() as i64
    }

    /// Tasks this replica took from another one whose lease had expired.
    pub fn takeovers(&self) -> u64 {
        self.takeovers.load(Ordering::Relaxed)
    }

    /// How often the loop steps without events: a fifth of the lease, between 100 ms
    /// and a second, so a dead replica's task is taken within a second of expiry.
    fn tick(&self) -> Duration {
        (self.settings.lease_ttl / 5).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    pub async fn register(&self, address: &str) -> Result<(), StoreError> {
        self.store
            .register_replica(self.replica(), address, self.settings.max_agents as i64)
            .await
    }

    /// Steps at once, then at every tick and on committed events (at most every
    /// 100 ms).
    pub fn spawn_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        // Events come in bursts while tasks run; a claim is not worth a step per
        // event, so steps are at least 100 ms apart.
        super::step_loop(
            self.store.subscribe_events(),
            Duration::from_millis(100),
            move || {
                let me = me.clone();
                async move {
                    if let Err(e) = me.run_once().await {
                        tracing::error!(error = %e, "cluster step");
                    }
                    me.tick()
                }
            },
        )
    }

    /// One step: heartbeat and renewals, losses, hand-backs, claims.
    pub async fn run_once(&self) -> Result<ClusterStep, StoreError> {
        let mut step = ClusterStep::default();
        let me = self.replica().to_string();
        let fences = self.store.fences();
        let stored = self.store.heartbeat(&me, self.ttl_ms()).await?;
        for (task, fence) in fences.held() {
            let still = stored
                .iter()
                .any(|l| l.spec_task_id == task && l.fence == fence);
            if !still && fences.lose(task) {
                tracing::warn!(
                    task = task.0,
                    "another replica took this task's lease: stopping its agent here"
                );
                self.lost.lock().unwrap().insert(task, Instant::now());
                // Its writes are refused now, so stopping records nothing over the
                // new owner's state.
                self.agents.stop(task).await;
                step.lost.push(task);
            }
        }
        self.lost.lock().unwrap().retain(|task, at| {
            let linger = at.elapsed() < LOST_LINGER;
            if !linger {
                fences.forget(*task);
            }
            linger
        });

        let mut open = Vec::new();
        for status in [SpecTaskStatus::Planning, SpecTaskStatus::Implementing] {
            let filter = SpecTaskFilter {
                status: Some(status),
                limit: 500,
                ..Default::default()
            };
            open.extend(self.store.list_spec_tasks(&filter).await?.0);
        }
        open.sort_by_key(|t| t.id);
        // Tasks that left the phases that need an owner go back (their runs
        // stopped their agents; a stop here makes sure before the lease goes).
        for (task, _) in fences.held() {
            if !open.iter().any(|t| t.id == task) {
                self.agents.stop(task).await;
                self.store.release_leases(&me, Some(task)).await?;
                step.released.push(task);
            }
        }

        let now = Utc::now();
        let leases = self.store.list_leases().await?;
        let replicas = self.store.list_replicas().await?;
        // A replica heartbeats every tick: one silent for three is left out of the
        // balance (a dead one's expired leases make it look idle and would hold
        // this replica back from taking its tasks over).
        let fresh = chrono::Duration::from_std(self.tick() * 3).unwrap_or_default();
        let live_leases: Vec<_> = leases.iter().filter(|l| l.expires_at > now).collect();
        // The least load among the other live replicas that have room.
        let others_min = replicas
            .iter()
            .filter(|r| r.id != me && r.stopped_at.is_none() && now - r.heartbeat_at < fresh)
            .map(|r| {
                let load = live_leases.iter().filter(|l| l.owner == r.id).count();
                (load, r.max_agents.max(0) as usize)
            })
            .filter(|(load, max)| load < max)
            .map(|(load, _)| load)
            .min();
        let mut load = fences.held().len();
        for task in &open {
            if load >= self.settings.max_agents || others_min.is_some_and(|m| load > m) {
                break;
            }
            if fences.owned_since(task.id).is_some() {
                continue;
            }
            let lease = leases.iter().find(|l| l.spec_task_id == task.id);
            let free = match lease {
                None => true,
                Some(l) => l.owner == me || l.expires_at <= now,
            };
            if !free {
                continue;
            }
            if let Some(claim) = self.store.claim_lease(task.id, &me, self.ttl_ms()).await? {
                self.lost.lock().unwrap().remove(&task.id);
                if let Some(from) = &claim.from {
                    self.takeovers.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(task = task.id.0, from = %from, fence = claim.fence, "took over a task whose lease expired");
                } else {
                    tracing::info!(task = task.id.0, fence = claim.fence, "took a task's lease");
                }
                if let Err(e) = self.prepare(task).await {
                    tracing::warn!(task = task.id.0, error = %e, "preparing a task taken over");
                }
                step.claimed.push(task.id);
                load += 1;
            }
        }
        Ok(step)
    }

    /// Before this replica works on a task it just took: no agent of an earlier
    /// owner answers its permission requests any more. (The task worktree is
    /// brought up to date by the merge queue's first merge under the new lease.)
    async fn prepare(&self, task: &SpecTask) -> anyhow::Result<()> {
        self.agents.reconcile_task(task.id).await?;
        Ok(())
    }

    /// A clean stop: every lease goes back at once, so others need not wait.
    pub async fn hand_back(&self) {
        if let Err(e) = self.store.stop_replica(self.replica()).await {
            tracing::warn!(error = %e, "handing this replica's leases back");
        }
    }
}
