//! Running an approved plan with the scripted agent: an app whose default agent is
//! `spectask-test-agent`, prompt templates committed to the project, a task whose
//! spec is recorded and approved, a loop that drives the implementer, and waiting
//! on the event log (never on a clock) for a condition.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use spectask::agents::profile::AgentProfile;

use super::app::{TestApp, git, spawn_app_with};
use super::db::Backend;

pub const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
/// The longest a test waits for something the system should do.
pub const WAIT: Duration = Duration::from_secs(30);

/// An app whose default agent is the scripted test agent, adjusted by `configure`.
pub async fn scripted_app(configure: impl FnOnce(&mut spectask::config::ServeConfig)) -> TestApp {
    spawn_app_with(Backend::Sqlite, |config| {
        config
            .agent_profiles
            .insert("test".into(), AgentProfile::new(AGENT, &[]));
        config.default_agent = "test".into();
        configure(config);
    })
    .await
}

/// `dir/repo`: a repository whose implementation prompt is the plan task's details,
/// so the scripted agent does what the plan's sub-items say.
pub fn script_repo(dir: &std::path::Path) -> std::path::PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    super::app::git_init(&repo);
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    repo
}

/// Commits prompt templates into the project's `.spectask/` on its base branch.
pub fn commit_templates(repo: &std::path::Path, templates: &[(&str, &str)]) {
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    for (name, text) in templates {
        std::fs::write(repo.join(".spectask").join(name), text).unwrap();
    }
    git(repo, &["add", ".spectask"]);
    git(repo, &["commit", "-qm", "spectask templates"]);
}

/// A task whose spec (with `plan` as its tasks.md) is recorded and approved, as
/// planning and review would leave it. `{{spec_dir}}` in `plan` becomes the spec
/// folder's path relative to the repository (`specs/<n>-<slug>`), so a task's
/// script can name files in it.
pub async fn approved_plan(app: &TestApp, project: i64, title: &str, plan: &str) -> i64 {
    let id = app.task(project, title).await;
    let (status, body) = app
        .post(
            &format!("/api/v1/spec-tasks/{id}/start-planning"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let spec_dir = format!("specs/{}", body["spec_dir_name"].as_str().unwrap());
    let plan = plan.replace("{{spec_dir}}", &spec_dir);
    super::spec::record_spec(app, id, super::spec::DESIGN, &plan).await;
    let (status, body) = app
        .post(&format!("/api/v1/spec-tasks/{id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("implementing")),
        "{body}"
    );
    id
}

/// Runs the implementation loop in the background: a step per committed event.
pub fn drive(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let implementer = app.implementer.clone();
    let mut events = app.store.subscribe_events();
    tokio::spawn(async move {
        loop {
            implementer.run_once().await.unwrap();
            if events.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Checks `check` now and after every committed event until it gives a value;
/// `None` after [`WAIT`].
pub async fn within<T, F, Fut>(app: &TestApp, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let mut events = app.store.subscribe_events();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            events.changed().await.unwrap();
        }
    })
    .await
    .ok()
}

/// Like [`within`], and panics naming `what` when it times out.
pub async fn wait_for<T, F, Fut>(app: &TestApp, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(app, check)
        .await
        .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Waits until the spec task has `status`, and returns it.
pub async fn wait_status(app: &TestApp, task: i64, status: &str) -> Value {
    let found = within(app, || async {
        let (_, body) = app.get(&format!("/api/v1/spec-tasks/{task}")).await;
        (body["status"] == status).then_some(body)
    })
    .await;
    match found {
        Some(body) => body,
        None => {
            let (_, plan) = app
                .get(&format!("/api/v1/spec-tasks/{task}/implementation-tasks"))
                .await;
            let (_, sessions) = app
                .get(&format!("/api/v1/spec-tasks/{task}/sessions"))
                .await;
            panic!("task {task} never reached {status}:\nplan: {plan}\nsessions: {sessions}")
        }
    }
}

/// Changes a project's settings, which must succeed.
pub async fn set_project(app: &TestApp, project: i64, settings: Value) {
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/projects/{project}"),
            Some(settings),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The first pending permission request of a task, once there is one.
pub async fn pending_permission(app: &TestApp, task: i64) -> Value {
    wait_for(app, "the agent's permission request", || async {
        let (_, list) = app
            .get(&format!(
                "/api/v1/permissions?status=pending&spec_task={task}"
            ))
            .await;
        list.as_array().and_then(|l| l.first()).cloned()
    })
    .await
}
