//! Progress of a SpecTask's implementation, and the one-call overview of it.
//!
//! A plan task's sub-items are read back from a `tasks.md`: while a session works on
//! the task, from that session's worktree (the agent ticks them as it goes); otherwise
//! from the task branch (spectask's task worktree, or the branch itself through git).
//! A task that is done or skipped counts every sub-item done. Overall progress is the
//! mean over the plan's tasks of 1 for a finished task and the share of its sub-items
//! done for the others.
//!
//! Read-only: nothing here writes a file, a row or an event.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::spec_files;
use crate::domain::tasks_md::{self, Mark, TasksDoc};
use crate::domain::*;
use crate::store::{Store, StoreError};

/// How many recent events an overview carries.
pub const RECENT_EVENTS: usize = 50;

/// One sub-item of a plan task (`- [x] 2.1 Handler` under `2.`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubItem {
    pub key: String,
    pub title: String,
    pub done: bool,
    /// 1 for a direct sub-item, 2 for one under it, and so on.
    pub depth: usize,
}

/// A plan task with its sub-items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskProgress {
    #[schema(value_type = i64)]
    pub id: ImplementationTaskId,
    pub key: String,
    pub title: String,
    pub status: ImplementationTaskStatus,
    pub depends_on: Vec<String>,
    /// Every session that worked (or works) on it, oldest first.
    #[schema(value_type = Vec<i64>)]
    pub session_ids: Vec<WorkSessionId>,
    pub sub_items: Vec<SubItem>,
    pub sub_items_done: usize,
    pub sub_items_total: usize,
    /// The session whose worktree the sub-items were read from; `null` when they come
    /// from the task branch.
    #[schema(value_type = Option<i64>)]
    pub read_from_session: Option<WorkSessionId>,
    /// 1.0 when done or skipped; otherwise the share of sub-items done (0.0 without any).
    pub fraction: f64,
}

/// A work session with the sub-items of its task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionProgress {
    #[schema(value_type = i64)]
    pub id: WorkSessionId,
    pub name: String,
    pub kind: WorkSessionKind,
    pub status: WorkSessionStatus,
    #[schema(value_type = Option<i64>)]
    pub parent_id: Option<WorkSessionId>,
    /// The key of the plan task it works on (none for a planning session).
    pub task_key: Option<String>,
    pub attempt: i64,
    pub sub_items_done: usize,
    pub sub_items_total: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    #[schema(value_type = i64)]
    pub spec_task_id: SpecTaskId,
    pub status: SpecTaskStatus,
    pub tasks_total: usize,
    /// Done or skipped tasks.
    pub tasks_done: usize,
    /// Tasks by status: `pending`, `in_progress`, `done`, `failed`, `blocked`, `skipped`,
    /// `cancelled`.
    pub by_status: BTreeMap<String, usize>,
    pub sessions_running: usize,
    /// The mean over tasks of 1 (done or skipped) or the share of its sub-items done;
    /// 0.0 to 1.0.
    pub fraction: f64,
    /// The plan's tasks in plan order.
    pub tasks: Vec<TaskProgress>,
    /// Every session of the spec task, oldest first.
    pub sessions: Vec<SessionProgress>,
}

/// A work session with the sessions under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionNode {
    #[serde(flatten)]
    pub session: WorkSession,
    #[schema(no_recursion)]
    pub children: Vec<SessionNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskNode {
    pub key: String,
    pub title: String,
    pub status: ImplementationTaskStatus,
    /// The spec-kit phase heading (`## Phase 2: …`) the task sits under in
    /// `tasks.md`, if any: phases are barriers, drawn as bands.
    pub phase: Option<String>,
}

/// `from` must be done before `to` starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskEdge {
    pub from: String,
    pub to: String,
}

/// The plan's dependency graph with each task's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskGraphView {
    pub nodes: Vec<TaskNode>,
    pub edges: Vec<TaskEdge>,
}

/// Everything a person looks at for one spec task, in one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Overview {
    pub task: SpecTask,
    /// Sessions without a parent (in this spec task), each with its children.
    pub sessions: Vec<SessionNode>,
    pub graph: TaskGraphView,
    /// The task's agent instance; `null` when it never had one.
    pub instance: Option<AgentInstance>,
    pub progress: Progress,
    /// The task's latest events (at most 50), oldest first.
    pub events: Vec<Event>,
    /// What a person is asked to act on, and whether the run waits for one.
    #[serde(flatten)]
    pub needs: super::attention::Needs,
}

/// The progress of a spec task (404 when there is none).
pub async fn progress(
    store: &dyn Store,
    tasks_dir: &Path,
    spec_task_id: SpecTaskId,
) -> Result<Progress, StoreError> {
    Ok(load(store, tasks_dir, spec_task_id).await?.progress)
}

/// A spec task with its plan, its sessions and their progress.
struct Loaded {
    task: SpecTask,
    plan: Vec<ImplementationTask>,
    sessions: Vec<WorkSession>,
    progress: Progress,
    /// Each plan task's phase, read from the task branch's `tasks.md`.
    phases: HashMap<String, String>,
}

async fn load(
    store: &dyn Store,
    tasks_dir: &Path,
    spec_task_id: SpecTaskId,
) -> Result<Loaded, StoreError> {
    let task = store.get_spec_task(spec_task_id).await?;
    let project = store.get_project(task.project_id).await?;
    let plan = store.list_implementation_tasks(spec_task_id).await?;
    let sessions = store.list_work_sessions(spec_task_id).await?;
    let sources = Sources::new(tasks_dir, &project, &task, &sessions).await;
    let progress = compute(&sources, &task, &plan, &sessions);
    let phases = sources
        .task
        .iter()
        .flat_map(|doc| doc.items.iter())
        .filter_map(|i| i.phase.clone().map(|p| (i.key.clone(), p)))
        .collect();
    Ok(Loaded {
        task,
        plan,
        sessions,
        progress,
        phases,
    })
}

/// The overview of a spec task (404 when there is none).
pub async fn overview(
    store: &dyn Store,
    tasks_dir: &Path,
    spec_task_id: SpecTaskId,
) -> Result<Overview, StoreError> {
    // Events first: a client that continues from the newest of them (`after=`) then
    // sees every change the rest of this overview might have missed.
    let events = store
        .latest_events(spec_task_id, RECENT_EVENTS as i64)
        .await?;
    let Loaded {
        task,
        plan,
        sessions,
        progress,
        phases,
    } = load(store, tasks_dir, spec_task_id).await?;
    let instance = match store.get_agent_instance(spec_task_id).await {
        Ok(i) => Some(i),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let permissions = store
        .list_permission_requests(Some(PermissionStatus::Pending), Some(spec_task_id))
        .await?;
    let coordination = store.list_coordination_events(spec_task_id).await?;
    let mut needs = super::attention::needs(&task, &plan, &sessions, &permissions, &coordination);
    let running = matches!(
        task.status,
        SpecTaskStatus::Planning | SpecTaskStatus::Implementing
    );
    if running && instance.as_ref().is_some_and(|i| i.held_at.is_some()) {
        super::attention::held(&mut needs);
    }
    Ok(Overview {
        needs,
        sessions: session_tree(&sessions),
        graph: graph(&plan, &phases),
        instance,
        progress,
        events,
        task,
    })
}

/// The `tasks.md` documents progress is read from.
struct Sources {
    /// The task branch's.
    task: Option<TasksDoc>,
    /// Each live session's own (by session id).
    sessions: HashMap<WorkSessionId, TasksDoc>,
}

impl Sources {
    async fn new(
        tasks_dir: &Path,
        project: &Project,
        task: &SpecTask,
        sessions: &[WorkSession],
    ) -> Sources {
        let rel = spec_files::tasks_md_rel(project, task);
        let from_worktree = spec_files::task_worktree(tasks_dir, task).join(&rel);
        let text = match tokio::fs::read_to_string(&from_worktree).await {
            Ok(t) => Some(t),
            // No task worktree (yet, or any more): the branch itself.
            Err(_) => crate::git::show(Path::new(&project.path), &task.branch, &rel)
                .await
                .ok()
                .flatten(),
        };
        let mut docs = HashMap::new();
        for s in sessions.iter().filter(|s| !s.status.is_terminal()) {
            let Some(worktree) = &s.worktree_path else {
                continue;
            };
            let path = PathBuf::from(worktree).join(&rel);
            if let Ok(text) = tokio::fs::read_to_string(&path).await {
                docs.insert(s.id, tasks_md::parse(&text));
            }
        }
        Sources {
            task: text.as_deref().map(tasks_md::parse),
            sessions: docs,
        }
    }
}

fn compute(
    sources: &Sources,
    task: &SpecTask,
    plan: &[ImplementationTask],
    sessions: &[WorkSession],
) -> Progress {
    let finished = |s: ImplementationTaskStatus| {
        matches!(
            s,
            ImplementationTaskStatus::Done | ImplementationTaskStatus::Skipped
        )
    };
    let tasks: Vec<TaskProgress> = plan
        .iter()
        .map(|t| {
            let mine: Vec<&WorkSession> = sessions
                .iter()
                .filter(|s| s.implementation_task_id == Some(t.id))
                .collect();
            // The newest live session that has the task in its tasks.md.
            let live = mine.iter().rev().find_map(|s| {
                sources
                    .sessions
                    .get(&s.id)
                    .filter(|doc| doc.get(&t.key).is_some())
                    .map(|doc| (s.id, doc))
            });
            let (read_from_session, doc) = match live {
                Some((id, doc)) => (Some(id), Some(doc)),
                None => (None, sources.task.as_ref()),
            };
            let mut sub_items = doc.map(|d| sub_items(d, &t.key)).unwrap_or_default();
            if finished(t.status) {
                for item in &mut sub_items {
                    item.done = true;
                }
            }
            let (done, total) = count(&sub_items);
            TaskProgress {
                id: t.id,
                key: t.key.clone(),
                title: t.title.clone(),
                status: t.status,
                depends_on: t.depends_on.clone(),
                session_ids: mine.iter().map(|s| s.id).collect(),
                sub_items,
                sub_items_done: done,
                sub_items_total: total,
                read_from_session,
                fraction: if finished(t.status) {
                    1.0
                } else if total == 0 {
                    0.0
                } else {
                    done as f64 / total as f64
                },
            }
        })
        .collect();
    let session_rows = sessions
        .iter()
        .map(|s| {
            let item = tasks
                .iter()
                .find(|t| Some(t.id) == s.implementation_task_id);
            let (done, total) = match (item, sources.sessions.get(&s.id)) {
                // A live session's own checklist, unless its task is already finished.
                (Some(t), Some(doc)) if !finished(t.status) && doc.get(&t.key).is_some() => {
                    count(&sub_items(doc, &t.key))
                }
                (Some(t), _) => (t.sub_items_done, t.sub_items_total),
                (None, _) => (0, 0),
            };
            SessionProgress {
                id: s.id,
                name: s.name.clone(),
                kind: s.kind,
                status: s.status,
                parent_id: s.parent_id,
                task_key: item.map(|t| t.key.clone()),
                attempt: s.attempt,
                sub_items_done: done,
                sub_items_total: total,
            }
        })
        .collect();
    let mut by_status = BTreeMap::new();
    for t in plan {
        *by_status.entry(t.status.to_string()).or_insert(0) += 1;
    }
    Progress {
        spec_task_id: task.id,
        status: task.status,
        tasks_total: plan.len(),
        tasks_done: plan.iter().filter(|t| finished(t.status)).count(),
        by_status,
        sessions_running: sessions
            .iter()
            .filter(|s| s.status == WorkSessionStatus::Running)
            .count(),
        fraction: if tasks.is_empty() {
            0.0
        } else {
            tasks.iter().map(|t| t.fraction).sum::<f64>() / tasks.len() as f64
        },
        tasks,
        sessions: session_rows,
    }
}

fn count(items: &[SubItem]) -> (usize, usize) {
    (items.iter().filter(|i| i.done).count(), items.len())
}

/// Every item under the item with this key, at any depth, in document order.
pub(crate) fn sub_items(doc: &TasksDoc, key: &str) -> Vec<SubItem> {
    let Some(root) = doc.index_of(key) else {
        return Vec::new();
    };
    doc.items
        .iter()
        .enumerate()
        .skip(root + 1)
        .filter_map(|(_, item)| {
            // Parents come before their children, so the chain is short and finite.
            let mut depth = 1;
            let mut parent = item.parent;
            while let Some(p) = parent {
                if p == root {
                    return Some(SubItem {
                        key: item.key.clone(),
                        title: item.title.clone(),
                        done: item.mark == Mark::Done,
                        depth,
                    });
                }
                if p < root {
                    return None;
                }
                depth += 1;
                parent = doc.items[p].parent;
            }
            None
        })
        .collect()
}

/// Sessions nested under their parents; a session whose parent is not in this spec
/// task is a root.
pub fn session_tree(sessions: &[WorkSession]) -> Vec<SessionNode> {
    let ids: std::collections::HashSet<WorkSessionId> = sessions.iter().map(|s| s.id).collect();
    let mut children: HashMap<WorkSessionId, Vec<&WorkSession>> = HashMap::new();
    let mut roots = Vec::new();
    for s in sessions {
        match s.parent_id {
            Some(p) if ids.contains(&p) && p != s.id => children.entry(p).or_default().push(s),
            _ => roots.push(s),
        }
    }
    fn build(
        s: &WorkSession,
        children: &HashMap<WorkSessionId, Vec<&WorkSession>>,
        depth: usize,
    ) -> SessionNode {
        SessionNode {
            session: s.clone(),
            // A parent is created before its children, so there is no cycle; the
            // depth bound keeps a corrupt row from recursing forever anyway.
            children: match children.get(&s.id) {
                Some(kids) if depth < 64 => {
                    kids.iter().map(|k| build(k, children, depth + 1)).collect()
                }
                _ => Vec::new(),
            },
        }
    }
    roots.iter().map(|s| build(s, &children, 0)).collect()
}

/// The plan as nodes and dependency edges.
pub fn graph(plan: &[ImplementationTask], phases: &HashMap<String, String>) -> TaskGraphView {
    TaskGraphView {
        nodes: plan
            .iter()
            .map(|t| TaskNode {
                key: t.key.clone(),
                title: t.title.clone(),
                status: t.status,
                phase: phases.get(&t.key).cloned(),
            })
            .collect(),
        edges: plan
            .iter()
            .flat_map(|t| {
                t.depends_on.iter().map(|d| TaskEdge {
                    from: d.clone(),
                    to: t.key.clone(),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Plan

- [ ] 1. First
  - detail
  - [x] 1.1 Alpha
    - [x] 1.1.1 Deep
  - [ ] 1.2 Beta
- [ ] 2. Second
  - [x] 2.1 Gamma
";

    #[test]
    fn sub_items_are_every_item_under_the_task_with_their_depth() {
        let doc = tasks_md::parse(DOC);
        let items = sub_items(&doc, "1");
        let got: Vec<(&str, bool, usize)> = items
            .iter()
            .map(|i| (i.key.as_str(), i.done, i.depth))
            .collect();
        assert_eq!(
            got,
            [("1.1", true, 1), ("1.1.1", true, 2), ("1.2", false, 1)]
        );
        assert_eq!(sub_items(&doc, "2").len(), 1);
        assert!(sub_items(&doc, "9").is_empty());
    }

    #[test]
    fn graph_edges_run_from_dependency_to_dependent() {
        let t = |key: &str, deps: &[&str]| ImplementationTask {
            id: ImplementationTaskId(0),
            spec_task_id: SpecTaskId(1),
            key: key.into(),
            title: key.into(),
            details: String::new(),
            status: ImplementationTaskStatus::Pending,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            requirements: vec![],
            optional: false,
            parallel: false,
        };
        let phases = HashMap::from([("3".to_string(), "Phase 2: Polish".to_string())]);
        let g = graph(&[t("1", &[]), t("2", &["1"]), t("3", &["1", "2"])], &phases);
        assert_eq!(g.nodes.len(), 3);
        assert_eq!(g.nodes[0].phase, None);
        assert_eq!(g.nodes[2].phase.as_deref(), Some("Phase 2: Polish"));
        let edges: Vec<(&str, &str)> = g
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(edges, [("1", "2"), ("1", "3"), ("2", "3")]);
    }
}
