//! The agent instances of every SpecTask, for the rest of spectask: one
//! [`AgentRuntime`] per SpecTask, created on first use with the task's profile and
//! its project's permission policy.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Mutex, broadcast};

use super::host::{Host, LiveUpdate, PermissionBroker};
use super::profile::{AgentProfile, profiles};
use super::runtime::{AgentError, AgentRuntime, RestartPolicy, RuntimeConfig, Timeouts};
use super::sandbox;
use super::terminals::Terminals;
use crate::domain::ids::*;
use crate::domain::{
    AgentInstance, AgentInstanceStatus, PermissionEvent, PermissionRequest, PermissionStatus,
    SpecTaskStatus,
};
use crate::store::{Store, StoreError, TryTransition};

#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Configured profiles, laid over the built-in ones.
    pub profiles: BTreeMap<String, AgentProfile>,
    /// The profile of a SpecTask that names none.
    pub default_profile: String,
    /// Each SpecTask's agent runs in `<tasks_dir>/<spec task id>`.
    pub tasks_dir: PathBuf,
    pub timeouts: Timeouts,
    pub restart: RestartPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("unknown agent profile {0:?}; known: {1}")]
    UnknownProfile(String, String),
    #[error("{0}")]
    InvalidAnswer(String),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct AgentManager {
    store: Arc<dyn Store>,
    settings: AgentSettings,
    profiles: BTreeMap<String, AgentProfile>,
    runtimes: Mutex<HashMap<SpecTaskId, Arc<AgentRuntime>>>,
    permissions: Arc<PermissionBroker>,
    live: broadcast::Sender<LiveUpdate>,
    /// Where agents reach spectask's tools, once the server listens.
    mcp: crate::mcp::servers::SharedEndpoint,
}

impl AgentManager {
    pub fn new(store: Arc<dyn Store>, settings: AgentSettings) -> AgentManager {
        AgentManager {
            profiles: profiles(&settings.profiles),
            store,
            settings,
            runtimes: Mutex::new(HashMap::new()),
            permissions: Arc::default(),
            live: broadcast::channel(4096).0,
            mcp: Arc::default(),
        }
    }

    /// Tells the agents where the server listens, for their tools (see `crate::mcp`).
    /// Only the first call counts: the server listens once.
    pub fn set_mcp_endpoint(&self, endpoint: crate::mcp::servers::Endpoint) {
        let _ = self.mcp.set(endpoint);
    }

    pub fn profiles(&self) -> &BTreeMap<String, AgentProfile> {
        &self.profiles
    }

    /// Every `session/update` of every instance, as it arrives.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveUpdate> {
        self.live.subscribe()
    }

    /// The runtime of a SpecTask's agent instance (not started until used).
    pub async fn runtime(
        &self,
        spec_task_id: SpecTaskId,
    ) -> Result<Arc<AgentRuntime>, ManagerError> {
        if let Some(rt) = self.runtimes.lock().await.get(&spec_task_id) {
            return Ok(rt.clone());
        }
        let task = self.store.get_spec_task(spec_task_id).await?;
        // A task whose run is over (or failed) gets no new agent: a step still
        // finishing after the end must not start one that nothing would stop.
        if matches!(
            task.status,
            SpecTaskStatus::Done
                | SpecTaskStatus::Cancelled
                | SpecTaskStatus::Rejected
                | SpecTaskStatus::Failed
                | SpecTaskStatus::ImplementationReview
        ) {
            return Err(ManagerError::Agent(AgentError::Interrupted(format!(
                "spec task {spec_task_id} is {}: it runs no agent",
                task.status
            ))));
        }
        let project = self.store.get_project(task.project_id).await?;
        let profile_name = task
            .agent_profile
            .clone()
            .unwrap_or_else(|| self.settings.default_profile.clone());
        let profile = self.profiles.get(&profile_name).cloned().ok_or_else(|| {
            ManagerError::UnknownProfile(
                profile_name.clone(),
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
            )
        })?;
        let host = Arc::new(Host {
            store: self.store.clone(),
            sessions: Mutex::default(),
            terminals: Terminals::default(),
            policy: project.settings.permission_policy,
            permissions: self.permissions.clone(),
            live: self.live.clone(),
            sandbox: Default::default(),
        });
        let task_dir = self.settings.tasks_dir.join(spec_task_id.to_string());
        let sandbox = sandbox::Plan {
            mode: project.settings.sandbox,
            policy: sandbox::Policy {
                task_dir: task_dir.clone(),
                write: profile.sandbox.write_dirs(),
                // The data dir: the database, tokens, spectask.toml, other tasks.
                hidden: self
                    .settings
                    .tasks_dir
                    .parent()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            },
        };
        let config = RuntimeConfig {
            spec_task_id,
            project_id: project.id,
            profile_name,
            profile,
            workdir: task_dir,
            timeouts: self.settings.timeouts,
            restart: self.settings.restart,
            sandbox,
            mcp: self.mcp.clone(),
        };
        let runtime = AgentRuntime::new(config, self.store.clone(), host);
        let mut runtimes = self.runtimes.lock().await;
        Ok(runtimes.entry(spec_task_id).or_insert(runtime).clone())
    }

    /// A person's answer to a pending permission request: one of its options, or
    /// `None` to cancel it. The waiting agent gets it at once.
    pub async fn answer_permission(
        &self,
        id: PermissionRequestId,
        option_id: Option<&str>,
        actor: &str,
    ) -> Result<PermissionRequest, ManagerError> {
        let request = self.store.get_permission_request(id).await?;
        if let Some(option) = option_id {
            let known = request
                .options
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o.get("optionId").and_then(|v| v.as_str()))
                .collect::<Vec<_>>();
            if !known.contains(&option) {
                return Err(ManagerError::InvalidAnswer(format!(
                    "option {option:?} is not one of this request's options: {}",
                    known.join(", ")
                )));
            }
        }
        let event = match option_id {
            Some(_) => PermissionEvent::Answer,
            None => PermissionEvent::Cancel,
        };
        let resolved = self
            .store
            .resolve_permission_request(id, event, option_id, actor)
            .await?;
        self.permissions
            .deliver(id, option_id.map(str::to_string))
            .await;
        Ok(resolved)
    }

    /// Reconciles what the database says with what runs: on server start no agent
    /// process of ours is alive, so running instances are recorded as stopped and
    /// pending permission requests (whose agents are gone) as cancelled.
    pub async fn reconcile(&self) -> Result<(), ManagerError> {
        for request in self
            .store
            .list_permission_requests(Some(PermissionStatus::Pending), None)
            .await?
        {
            let _ = self
                .store
                .resolve_permission_request(request.id, PermissionEvent::Cancel, None, "system")
                .await;
        }
        Ok(())
    }

    /// The same for one task this replica of a cluster just took: the earlier
    /// owner's agent, which its pending permission requests waited on, is gone.
    pub async fn reconcile_task(&self, spec_task_id: SpecTaskId) -> Result<(), ManagerError> {
        for request in self
            .store
            .list_permission_requests(Some(PermissionStatus::Pending), Some(spec_task_id))
            .await?
        {
            self.store
                .resolve_permission_request(request.id, PermissionEvent::Cancel, None, "system")
                .await
                .try_transition()?;
        }
        Ok(())
    }

    /// Cancels every thread of a SpecTask's instance and stops it for good (task
    /// cancelled or failed): nothing still finishing can start it again, and the
    /// next phase (a retry) gets a fresh runtime.
    pub async fn cancel_all(&self, spec_task_id: SpecTaskId) -> Result<(), AgentError> {
        let runtime = self.runtimes.lock().await.remove(&spec_task_id);
        if let Some(rt) = runtime {
            rt.cancel_all().await;
            rt.retire().await?;
        }
        Ok(())
    }

    /// A person stops a task's agent: it is held (the orchestrator starts nothing on
    /// it; its sessions wait, interrupted) and its process tree ends. `None` when
    /// the task never had an agent.
    pub async fn hold(
        &self,
        spec_task_id: SpecTaskId,
        actor: &str,
    ) -> Result<Option<AgentInstance>, ManagerError> {
        if self
            .store
            .hold_agent_instance(spec_task_id, true, actor)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let runtime = self.runtimes.lock().await.get(&spec_task_id).cloned();
        if let Some(rt) = runtime {
            rt.stop().await?;
        }
        Ok(Some(self.store.get_agent_instance(spec_task_id).await?))
    }

    /// A person restarts a task's agent: the hold ends and the process starts again.
    pub async fn release_and_restart(
        &self,
        spec_task_id: SpecTaskId,
        actor: &str,
    ) -> Result<(), ManagerError> {
        self.store
            .hold_agent_instance(spec_task_id, false, actor)
            .await?;
        let runtime = self.runtime(spec_task_id).await?;
        runtime.restart().await?;
        Ok(())
    }

    /// The emergency stop: every agent of every task that is not stopped already is
    /// held and stopped. Returns how many were.
    pub async fn hold_all(&self, actor: &str) -> Result<usize, ManagerError> {
        let mut stopped = 0;
        for instance in self.store.list_agent_instances().await? {
            if instance.held_at.is_some() && instance.status == AgentInstanceStatus::Stopped {
                continue;
            }
            let live = !matches!(
                instance.status,
                AgentInstanceStatus::Stopped | AgentInstanceStatus::Crashed
            );
            self.hold(instance.spec_task_id, actor).await?;
            stopped += usize::from(live);
        }
        Ok(stopped)
    }

    /// Stops a SpecTask's agent for good, if it has one (its run ended); a later
    /// phase gets a fresh runtime.
    pub async fn stop(&self, spec_task_id: SpecTaskId) {
        let runtime = self.runtimes.lock().await.remove(&spec_task_id);
        if let Some(rt) = runtime
            && let Err(e) = rt.retire().await
        {
            tracing::warn!(task = spec_task_id.0, error = %e, "stopping an agent");
        }
    }

    /// Stops every running agent (server shutdown).
    pub async fn shutdown(&self) {
        let runtimes: Vec<_> = self.runtimes.lock().await.values().cloned().collect();
        for rt in runtimes {
            if let Err(e) = rt.stop().await {
                tracing::warn!(error = %e, "stopping an agent");
            }
        }
    }

    /// Whether a SpecTask's agent is running now.
    pub async fn is_running(&self, spec_task_id: SpecTaskId) -> bool {
        match self.runtimes.lock().await.get(&spec_task_id) {
            Some(rt) => *rt.watch_status().borrow() == AgentInstanceStatus::Ready,
            None => false,
        }
    }
}
