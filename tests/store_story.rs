//! The storage story, told once and run against both backends: every method of the
//! store, its events, and the refusals that must change nothing.

mod common;

use common::db::{Backend, TestDb};
use serde_json::json;
use spectask::domain::*;
use spectask::store::*;

fn settings() -> ProjectSettings {
    ProjectSettings {
        base_branch: "main".into(),
        spec_folder: "specs".into(),
        verification_command: None,
        planning_wip_limit: Some(1),
        implementation_wip_limit: None,
        max_parallel_sessions: 2,
        permission_policy: PermissionPolicy::Auto,
        ..Default::default()
    }
}

fn new_task(project_id: ProjectId, title: &str) -> NewSpecTask {
    NewSpecTask {
        project_id,
        title: title.into(),
        description: String::new(),
        prompt: format!("Please {title}"),
        priority: Priority::Medium,
        task_type: TaskType::Feature,
        max_parallel_sessions: None,
        agent_profile: None,
    }
}

async fn story(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = connect(db.url()).await.unwrap();
    let actor = "token:1";

    // Projects: create, duplicate refused, patch validated.
    let project = store
        .create_project(
            NewProject {
                name: "demo".into(),
                path: "/repos/demo".into(),
                settings: settings(),
            },
            actor,
        )
        .await
        .unwrap();
    let dup = store
        .create_project(
            NewProject {
                name: "again".into(),
                path: "/repos/demo".into(),
                settings: settings(),
            },
            actor,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let bad = ProjectSettingsPatch {
        max_parallel_sessions: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        store.update_project(project.id, &bad, actor).await,
        Err(StoreError::InvalidSetting(_))
    ));
    assert_eq!(
        store.get_project(project.id).await.unwrap().settings,
        settings()
    );

    // Tasks: create, list, patch.
    let a = store
        .create_spec_task(new_task(project.id, "Add login"), actor)
        .await
        .unwrap();
    let b = store
        .create_spec_task(new_task(project.id, "Add logout"), actor)
        .await
        .unwrap();
    assert_eq!(a.status, SpecTaskStatus::Backlog);
    assert_eq!(a.branch, format!("spectask/{}-add-login", a.id));
    assert!(matches!(
        store
            .create_spec_task(new_task(ProjectId(9999), "x"), actor)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let patched = store
        .update_spec_task(
            a.id,
            &SpecTaskPatch {
                title: Some("Add login with OAuth".into()),
                ..Default::default()
            },
            actor,
        )
        .await
        .unwrap();
    assert_eq!(patched.title, "Add login with OAuth");
    assert_eq!(patched.branch, a.branch, "renaming never moves the branch");
    let (page, next) = store
        .list_spec_tasks(&SpecTaskFilter {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|t| t.id).collect::<Vec<_>>(), vec![b.id]);
    let (page2, next2) = store
        .list_spec_tasks(&SpecTaskFilter {
            limit: 1,
            before_id: next,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page2[0].id, a.id);
    assert_eq!(next2, None);

    // Transitions: the planning WIP limit of 1 queues the second task until the first
    // leaves planning, and the admission is recorded as its own event.
    let a = store
        .transition_spec_task(a.id, &SpecTaskEvent::StartPlanning, actor)
        .await
        .unwrap();
    assert_eq!(a.status, SpecTaskStatus::Planning);
    let b = store
        .transition_spec_task(b.id, &SpecTaskEvent::StartPlanning, actor)
        .await
        .unwrap();
    assert_eq!(b.status, SpecTaskStatus::PlanningQueued);
    let illegal = store
        .transition_spec_task(a.id, &SpecTaskEvent::Approve, actor)
        .await;
    assert!(
        matches!(illegal, Err(StoreError::Transition(_))),
        "{illegal:?}"
    );
    assert_eq!(
        store.get_spec_task(a.id).await.unwrap().status,
        SpecTaskStatus::Planning
    );
    let a = store
        .transition_spec_task(a.id, &|_| SpecTaskEvent::SpecWritten, "system")
        .await
        .unwrap();
    assert_eq!(a.status, SpecTaskStatus::SpecReview);
    assert_eq!(
        store.get_spec_task(b.id).await.unwrap().status,
        SpecTaskStatus::Planning
    );
    let b = store
        .transition_spec_task(
            b.id,
            &|_| SpecTaskEvent::Fail {
                reason: "agent crashed".into(),
            },
            "system",
        )
        .await
        .unwrap();
    assert_eq!(
        (b.status, b.failed_phase),
        (SpecTaskStatus::Failed, Some(Phase::Planning))
    );
    assert_eq!(b.failure_reason.as_deref(), Some("agent crashed"));
    let a = store
        .transition_spec_task(a.id, &SpecTaskEvent::Approve, actor)
        .await
        .unwrap();
    assert_eq!(a.status, SpecTaskStatus::Implementing);

    // Sessions, with a parent that must belong to the same task.
    let root = store
        .create_work_session(
            NewWorkSession {
                spec_task_id: a.id,
                parent_id: None,
                implementation_task_id: None,
                kind: WorkSessionKind::Implementation,
                name: "1. Create the user table".into(),
                prompt: "do it".into(),
            },
            "system",
        )
        .await
        .unwrap();
    let child = store
        .create_work_session(
            NewWorkSession {
                spec_task_id: a.id,
                parent_id: Some(root.id),
                implementation_task_id: None,
                kind: WorkSessionKind::Spawned,
                name: "helper".into(),
                prompt: "help".into(),
            },
            actor,
        )
        .await
        .unwrap();
    let foreign_parent = store
        .create_work_session(
            NewWorkSession {
                spec_task_id: b.id,
                parent_id: Some(root.id),
                implementation_task_id: None,
                kind: WorkSessionKind::Spawned,
                name: "x".into(),
                prompt: "x".into(),
            },
            actor,
        )
        .await;
    assert!(
        matches!(foreign_parent, Err(StoreError::Missing(_))),
        "{foreign_parent:?}"
    );
    let running = store
        .transition_work_session(root.id, WorkSessionEvent::Start, None, "system")
        .await
        .unwrap();
    assert_eq!(
        (running.status, running.attempt),
        (WorkSessionStatus::Running, 1)
    );
    let refused = store
        .transition_work_session(root.id, WorkSessionEvent::Merged, None, "system")
        .await;
    assert!(matches!(refused, Err(StoreError::Transition(_))));
    let interrupted = store
        .transition_work_session(
            root.id,
            WorkSessionEvent::Interrupt,
            Some("exit 137".into()),
            "system",
        )
        .await
        .unwrap();
    assert_eq!(interrupted.failure_reason.as_deref(), Some("exit 137"));
    let again = store
        .transition_work_session(root.id, WorkSessionEvent::Start, None, "system")
        .await
        .unwrap();
    assert_eq!((again.attempt, again.failure_reason), (2, None));
    let sessions = store.list_work_sessions(a.id).await.unwrap();
    assert_eq!(
        sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![root.id, child.id]
    );
    assert_eq!(sessions[1].parent_id, Some(root.id));

    // Coordination: post, list, acknowledge once.
    let posted = store
        .post_coordination_event(
            NewCoordinationEvent {
                spec_task_id: a.id,
                kind: CoordinationKind::Handoff,
                from_session_id: Some(root.id),
                to_session_id: Some(child.id),
                message: "the User type is in src/user.rs".into(),
                payload: json!({"files": ["src/user.rs"]}),
            },
            "system",
        )
        .await
        .unwrap();
    let wrong_ack = store
        .acknowledge_coordination_event(a.id, posted.id, Some(root.id), "system")
        .await;
    assert!(
        matches!(wrong_ack, Err(StoreError::Conflict(_))),
        "{wrong_ack:?}"
    );
    let acked = store
        .acknowledge_coordination_event(a.id, posted.id, Some(child.id), "system")
        .await
        .unwrap();
    assert_eq!(acked.acknowledged_by, Some(child.id));
    assert!(matches!(
        store
            .acknowledge_coordination_event(a.id, posted.id, None, actor)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let listed = store.list_coordination_events(a.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].payload, json!({"files": ["src/user.rs"]}));

    // Shared state: create, update with the right version, refuse a stale one.
    let v1 = store
        .put_shared_state(a.id, "api/contract", &json!({"path": "/login"}), 0, actor)
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let v2 = store
        .put_shared_state(
            a.id,
            "api/contract",
            &json!({"path": "/v2/login"}),
            1,
            actor,
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    for stale in [0, 1, 5] {
        let conflict = store
            .put_shared_state(a.id, "api/contract", &json!("lost"), stale, actor)
            .await;
        assert!(
            matches!(conflict, Err(StoreError::Conflict(_))),
            "{stale}: {conflict:?}"
        );
    }
    let current = store.get_shared_state(a.id, "api/contract").await.unwrap();
    assert_eq!(
        (current.version, current.value),
        (2, json!({"path": "/v2/login"}))
    );
    assert!(matches!(
        store
            .put_shared_state(a.id, "bad key!", &json!(1), 0, actor)
            .await,
        Err(StoreError::Invalid(_))
    ));

    // Events: one per change, strictly increasing, filterable, and none for refusals.
    let all = store.list_events(0, None, 1000).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "spec_task.created").count(),
        2
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "shared_state.written")
            .count(),
        2
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "coordination_event.acknowledged")
            .count(),
        1
    );
    assert_eq!(kinds.iter().filter(|k| **k == "project.created").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "project.updated").count(), 0);
    let a_events = store.list_events(0, Some(a.id), 1000).await.unwrap();
    assert!(a_events.iter().all(|e| e.spec_task_id == Some(a.id)));
    let statuses: Vec<_> = a_events
        .iter()
        .filter(|e| e.kind == "spec_task.status_changed")
        .map(|e| e.data["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["planning", "spec_review", "implementing"]);
    // The newest events of a task, oldest first.
    let latest = store.latest_events(a.id, 2).await.unwrap();
    assert_eq!(latest, a_events[a_events.len() - 2..].to_vec());
    let b_admitted = store
        .list_events(0, Some(b.id), 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.data["action"] == "admit")
        .expect("b's admission is recorded");
    assert_eq!(b_admitted.actor, "system");
    let after = store.list_events(all[2].id, None, 2).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![all[3].id, all[4].id]
    );

    // Tokens: only active ones authenticate.
    let token = store.create_token("ci", "hash-1", actor).await.unwrap();
    assert!(store.find_active_token("hash-1").await.unwrap().is_some());
    store.revoke_token(token.id, actor).await.unwrap();
    assert!(store.find_active_token("hash-1").await.unwrap().is_none());
    assert!(matches!(
        store.revoke_token(token.id, actor).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.revoke_token(999, actor).await,
        Err(StoreError::NotFound { .. })
    ));
    store.close().await;
}

#[tokio::test]
async fn story_on_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test]
async fn story_on_postgres() {
    story(Backend::Postgres).await;
}

/// Many concurrent transitions of one task: exactly one approval wins, the loser gets
/// a typed refusal, and exactly one status event is written.
async fn concurrent_approvals(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = std::sync::Arc::new(connect(db.url()).await.unwrap());
    let project = store
        .create_project(
            NewProject {
                name: "p".into(),
                path: "/p".into(),
                settings: settings(),
            },
            "t",
        )
        .await
        .unwrap();
    let task = store
        .create_spec_task(new_task(project.id, "race"), "t")
        .await
        .unwrap();
    store
        .transition_spec_task(task.id, &SpecTaskEvent::StartPlanning, "t")
        .await
        .unwrap();
    store
        .transition_spec_task(task.id, &|_| SpecTaskEvent::SpecWritten, "t")
        .await
        .unwrap();
    let before = store
        .list_events(0, Some(task.id), 1000)
        .await
        .unwrap()
        .len();
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .transition_spec_task(task.id, &SpecTaskEvent::Approve, "t")
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(t) => {
                assert_eq!(t.status, SpecTaskStatus::Implementing);
                wins += 1;
            }
            Err(StoreError::Transition(_) | StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(wins, 1);
    let after = store
        .list_events(0, Some(task.id), 1000)
        .await
        .unwrap()
        .len();
    assert_eq!(after, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_on_sqlite() {
    concurrent_approvals(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_approvals_on_postgres() {
    concurrent_approvals(Backend::Postgres).await;
}
