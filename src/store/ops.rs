//! What running spectask as a service needs from the database: a cheap liveness
//! query for `/readyz`, and the figures `/api/v1/metrics` reads at scrape time. They
//! are counts over small indexed tables (a few `GROUP BY`s), so a scrape costs about
//! as much as a list request, and nothing is kept in memory that could drift from
//! the database other replicas write too.

use async_trait::async_trait;
use sqlx::Row;

use super::Result;
use super::sql::SqlStore;
use crate::domain::SpecTaskId;

/// The store's figures at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpsSnapshot {
    /// `(status, count)` of spec tasks; statuses with no task are absent.
    pub spec_tasks: Vec<(String, i64)>,
    /// `(status, count)` of work sessions.
    pub work_sessions: Vec<(String, i64)>,
    /// `(status, count)` of agent instances (one per spec task that ever had one).
    pub agent_instances: Vec<(String, i64)>,
    /// The newest CPU/memory sample of each agent process that is running.
    pub agent_usage: Vec<AgentUsage>,
    /// The newest event's id (0 when there is none).
    pub last_event_id: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentUsage {
    pub spec_task_id: SpecTaskId,
    pub cpu_percent: f64,
    pub rss_bytes: i64,
}

#[async_trait]
pub trait OpsStore: Send + Sync + 'static {
    /// A round trip to the database that touches no table.
    async fn ping(&self) -> Result<()>;
    async fn ops_snapshot(&self) -> Result<OpsSnapshot>;
}

#[async_trait]
impl OpsStore for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn ops_snapshot(&self) -> Result<OpsSnapshot> {
        let by_status = |table: &str| {
            format!("SELECT status, COUNT(*) AS n FROM {table} GROUP BY status ORDER BY status")
        };
        let mut snapshot = OpsSnapshot::default();
        for (table, into) in [
            ("spec_tasks", &mut snapshot.spec_tasks),
            ("work_sessions", &mut snapshot.work_sessions),
            ("agent_instances", &mut snapshot.agent_instances),
        ] {
            for row in self.fetch_rows(&by_status(table), Vec::new()).await? {
                into.push((row.try_get("status")?, row.try_get("n")?));
            }
        }
        // Starting or ready: the instances with a process (stopped and crashed have none).
        let usage = self
            .fetch_rows(
                "SELECT i.spec_task_id, s.cpu_percent, s.rss_bytes FROM agent_instances i \
                 JOIN agent_samples s ON s.id = \
                   (SELECT MAX(id) FROM agent_samples WHERE agent_instance_id = i.id) \
                 WHERE i.status IN ('starting', 'ready') ORDER BY i.spec_task_id",
                Vec::new(),
            )
            .await?;
        for row in usage {
            snapshot.agent_usage.push(AgentUsage {
                spec_task_id: row.try_get("spec_task_id")?,
                cpu_percent: row.try_get("cpu_percent")?,
                rss_bytes: row.try_get("rss_bytes")?,
            });
        }
        snapshot.last_event_id = crate::store::Store::last_event_id(self).await?;
        Ok(snapshot)
    }
}
