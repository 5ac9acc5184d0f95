//! `/spec-tasks`: create, list, get, update the text fields, and the lifecycle as
//! actions. Status is never written directly: each action is an event for the
//! domain's transition function.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path, Query};
use super::{AppState, Caller, page_limit};
use crate::domain::*;
use crate::store::{MakeEvent, NewSpecTask, SpecTaskFilter, SpecTaskPatch};

const MAX_TITLE_CHARS: usize = 200;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSpecTask {
    /// What the person wants done; the planning agent's input. Not blank.
    pub prompt: String,
    /// Defaults to the prompt's first line. Not blank; at most 200 characters.
    #[schema(max_length = 200)]
    pub title: Option<String>,
    pub description: Option<String>,
    /// Defaults to `medium`.
    pub priority: Option<Priority>,
    /// Defaults to `feature`.
    #[serde(rename = "type")]
    pub task_type: Option<TaskType>,
    /// Required when more than one project is registered.
    pub project_id: Option<i64>,
    /// 1 to 64 (default: the project's).
    #[schema(minimum = 1, maximum = 64)]
    pub max_parallel_sessions: Option<i64>,
    /// The agent profile its sessions run with (default: the server's default agent);
    /// one the server does not know is 404.
    pub agent_profile: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<SpecTaskStatus>,
    pub project: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SpecTaskPage {
    pub items: Vec<SpecTask>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// List spec tasks, newest first.
#[utoipa::path(get, path = "/spec-tasks", operation_id = "list_spec_tasks", tag = "spec tasks", params(ListQuery),
    responses((status = 200, body = SpecTaskPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<SpecTaskPage>> {
    let filter = SpecTaskFilter {
        project_id: q.project.map(ProjectId),
        status: q.status,
        before_id: q.cursor,
        limit: page_limit(q.limit, 50, 200)?,
    };
    let (items, next_cursor) = state.store.list_spec_tasks(&filter).await?;
    Ok(Json(SpecTaskPage { items, next_cursor }))
}

/// Create a spec task in `backlog`.
#[utoipa::path(post, path = "/spec-tasks", operation_id = "create_spec_task", tag = "spec tasks", request_body = CreateSpecTask,
    responses((status = 201, body = SpecTask),
              (status = 404, body = ErrorBody, description = "no such project or agent profile"),
              (status = 409, body = ErrorBody, description = "no `project_id`, and not exactly one project is registered"),
              (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateSpecTask>,
) -> ApiResult<(StatusCode, Json<SpecTask>)> {
    if body.prompt.trim().is_empty() {
        return Err(ApiError::Validation("prompt: must not be empty".into()));
    }
    let title = match body.title.as_deref().map(str::trim) {
        Some("") => return Err(ApiError::Validation("title: must not be empty".into())),
        Some(t) => t.to_string(),
        None => title_from_prompt(&body.prompt),
    };
    check_title(body.title.as_deref().unwrap_or(&title))?;
    if let Some(n) = body.max_parallel_sessions
        && !(1..=MAX_PARALLEL_SESSIONS_CEILING).contains(&n)
    {
        return Err(ApiError::Validation(format!(
            "max_parallel_sessions: must be between 1 and {MAX_PARALLEL_SESSIONS_CEILING}"
        )));
    }
    if let Some(p) = &body.agent_profile
        && !state.agents.profiles().contains_key(p)
    {
        let known: Vec<&str> = state.agents.profiles().keys().map(String::as_str).collect();
        return Err(ApiError::NotFound(format!(
            "agent_profile: unknown profile {p:?}; known: {}",
            known.join(", ")
        )));
    }
    let project_id = match body.project_id {
        Some(id) => id,
        None => default_project(&state).await?,
    };
    let new = NewSpecTask {
        project_id: ProjectId(project_id),
        title,
        description: body.description.unwrap_or_default(),
        prompt: body.prompt,
        priority: body.priority.unwrap_or(Priority::Medium),
        task_type: body.task_type.unwrap_or(TaskType::Feature),
        max_parallel_sessions: body.max_parallel_sessions,
        agent_profile: body.agent_profile,
    };
    let task = state.store.create_spec_task(new, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

fn check_title(title: &str) -> ApiResult<()> {
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::Validation(format!(
            "title: at most {MAX_TITLE_CHARS} characters"
        )));
    }
    Ok(())
}

/// With one project registered, a task needs not name it.
pub(super) async fn default_project(state: &AppState) -> ApiResult<i64> {
    let projects = state.store.list_projects().await?;
    match projects.as_slice() {
        [only] => Ok(only.id.0),
        [] => Err(ApiError::Conflict(
            "no project is registered: add one first (`spectask project add PATH`)".into(),
        )),
        _ => Err(ApiError::Conflict(
            "several projects are registered: name one with project_id".into(),
        )),
    }
}

/// Get one spec task.
#[utoipa::path(get, path = "/spec-tasks/{id}", operation_id = "get_spec_task", tag = "spec tasks", params(("id" = i64, Path)),
    responses((status = 200, body = SpecTask), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<SpecTask>> {
    Ok(Json(state.store.get_spec_task(SpecTaskId(id)).await?))
}

/// Update a spec task's title, description or priority. Its status changes only
/// through the lifecycle actions; a `status` field is refused.
#[utoipa::path(patch, path = "/spec-tasks/{id}", operation_id = "update_spec_task", tag = "spec tasks", params(("id" = i64, Path)),
    request_body = SpecTaskPatch,
    responses((status = 200, body = SpecTask), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(patch): Json<SpecTaskPatch>,
) -> ApiResult<Json<SpecTask>> {
    if let Some(title) = &patch.title {
        check_title(title)?;
    }
    Ok(Json(
        state
            .store
            .update_spec_task(SpecTaskId(id), &patch, &caller.actor())
            .await?,
    ))
}

/// The lifecycle actions a person can take on a spec task.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    StartPlanning,
    Approve,
    RequestChanges,
    Reject,
    Cancel,
    Retry,
}

impl Action {
    fn event(self) -> MakeEvent<'static> {
        match self {
            Action::StartPlanning => &SpecTaskEvent::StartPlanning,
            Action::Approve => &SpecTaskEvent::Approve,
            Action::RequestChanges => &SpecTaskEvent::RequestChanges,
            Action::Reject => &|_| SpecTaskEvent::Reject,
            Action::Cancel => &|_| SpecTaskEvent::Cancel,
            Action::Retry => &SpecTaskEvent::Retry,
        }
    }
}

/// Take a lifecycle action: `start-planning`, `approve`, `request-changes`, `reject`,
/// `cancel` or `retry`. An action the task's status does not allow is refused with
/// 409 and changes nothing. The status change is recorded; the agent work behind
/// planning and implementing is started by the orchestrator, not by this call.
#[utoipa::path(post, path = "/spec-tasks/{id}/{action}", tag = "spec tasks",
    params(("id" = i64, Path), ("action" = Action, Path)),
    responses((status = 200, body = SpecTask), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "illegal transition; nothing changed")))]
pub async fn action(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(i64, String)>,
) -> ApiResult<Json<SpecTask>> {
    let action: Action = serde_json::from_value(serde_json::Value::String(action.clone())).map_err(|_| {
        ApiError::NotFound(format!(
            "no action {action:?}; use start-planning, approve, request-changes, reject, cancel or retry"
        ))
    })?;
    let actor = caller.actor();
    // Review verdicts go through the reviewer, which also records them and, for an
    // approval, writes spec.json on the task branch.
    let task = match action {
        Action::Approve => state.reviewer.approve(SpecTaskId(id), &actor).await?,
        Action::RequestChanges => {
            state
                .reviewer
                .request_changes(SpecTaskId(id), &actor)
                .await?
        }
        Action::Reject => state.reviewer.reject(SpecTaskId(id), &actor).await?,
        Action::Cancel => {
            let task = state
                .store
                .transition_spec_task(SpecTaskId(id), Action::Cancel.event(), &actor)
                .await?;
            state.implementer.cancel_task(SpecTaskId(id)).await?;
            task
        }
        other => {
            state
                .store
                .transition_spec_task(SpecTaskId(id), other.event(), &actor)
                .await?
        }
    };
    Ok(Json(task))
}
