//! `/projects`: register a local git repository, list, get, update its settings.

use std::path::Path as FsPath;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path};
use super::{AppState, Caller};
use crate::domain::*;
use crate::git::{self, GitError};
use crate::store::NewProject;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Absolute path of a local git repository (any folder inside it); a path with
    /// no repository is 404.
    pub path: String,
    /// Defaults to the repository folder's name (also when blank).
    pub name: Option<String>,
    /// Defaults to the branch the repository has checked out. A valid git branch
    /// name (`git check-ref-format --branch`).
    pub base_branch: Option<String>,
    /// Defaults to `specs`. A relative folder inside the repository, without `..`.
    pub spec_folder: Option<String>,
    /// Blank: none.
    pub verification_command: Option<String>,
    /// At least 1; `null`: no limit.
    #[schema(minimum = 1)]
    pub planning_wip_limit: Option<i64>,
    /// At least 1; `null`: no limit.
    #[schema(minimum = 1)]
    pub implementation_wip_limit: Option<i64>,
    /// 1 to 64; defaults to 3.
    #[schema(minimum = 1, maximum = 64)]
    pub max_parallel_sessions: Option<i64>,
    /// `auto` (default), `ask` or `deny`.
    pub permission_policy: Option<PermissionPolicy>,
    /// `fix` (default: a conflict-fixing session) or `wait` (for a person).
    pub conflict_policy: Option<ConflictPolicy>,
    /// Defaults to true: a finished plan waits in `implementation_review`.
    pub review_implementation: Option<bool>,
    /// 1 to 10; defaults to 2.
    #[schema(minimum = 1, maximum = 10)]
    pub max_attempts: Option<i64>,
    /// `done` (default: a session that changed nothing completes) or `review` (it
    /// fails for a person to skip or retry).
    pub empty_session: Option<EmptySessionPolicy>,
    /// 1 to 86400; defaults to 1800.
    #[schema(minimum = 1, maximum = 86400)]
    pub turn_timeout_secs: Option<i64>,
    /// 1 to 86400; defaults to 600.
    #[schema(minimum = 1, maximum = 86400)]
    pub verify_timeout_secs: Option<i64>,
    /// `required` (default: agents start only confined by the kernel),
    /// `best_effort` (unconfined, with a warning event, where the kernel cannot) or
    /// `off`.
    pub sandbox: Option<SandboxMode>,
    /// 0 to 100; defaults to 10: how many sessions the agents of one spec task may
    /// spawn through their `spawn_session` tool.
    #[schema(minimum = 0, maximum = 100)]
    pub max_spawned_sessions: Option<i64>,
}

/// List registered projects.
#[utoipa::path(get, path = "/projects", operation_id = "list_projects", tag = "projects",
    responses((status = 200, body = Vec<Project>), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<Project>>> {
    Ok(Json(state.store.list_projects().await?))
}

/// Register a local git repository as a project.
#[utoipa::path(post, path = "/projects", operation_id = "create_project", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = Project),
              (status = 404, body = ErrorBody, description = "no git repository at the path"),
              (status = 409, body = ErrorBody, description = "already registered"),
              (status = 422, body = ErrorBody, description = "bad settings")))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<CreateProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let path = FsPath::new(&body.path);
    if !path.is_absolute() {
        return Err(ApiError::Validation(format!(
            "path {:?} must be absolute",
            body.path
        )));
    }
    let root = git::repo_root(path).await.map_err(|e| match e {
        GitError::Spawn(_) => ApiError::Internal(e.into()),
        other => ApiError::NotFound(other.to_string()),
    })?;
    let base_branch = match body.base_branch {
        Some(b) => b,
        None => git::current_branch(&root)
            .await
            .map_err(anyhow::Error::from)?
            .unwrap_or_else(|| "main".to_string()),
    };
    let name = body
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .or_else(|| root.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".to_string());
    let settings = ProjectSettings {
        base_branch,
        spec_folder: body
            .spec_folder
            .unwrap_or_else(|| DEFAULT_SPEC_FOLDER.to_string()),
        verification_command: body.verification_command.filter(|c| !c.trim().is_empty()),
        planning_wip_limit: body.planning_wip_limit,
        implementation_wip_limit: body.implementation_wip_limit,
        max_parallel_sessions: body
            .max_parallel_sessions
            .unwrap_or(DEFAULT_MAX_PARALLEL_SESSIONS),
        permission_policy: body.permission_policy.unwrap_or_default(),
        conflict_policy: body.conflict_policy.unwrap_or_default(),
        review_implementation: body.review_implementation.unwrap_or(true),
        max_attempts: body.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
        empty_session: body.empty_session.unwrap_or_default(),
        turn_timeout_secs: body.turn_timeout_secs.unwrap_or(DEFAULT_TURN_TIMEOUT_SECS),
        verify_timeout_secs: body
            .verify_timeout_secs
            .unwrap_or(DEFAULT_VERIFY_TIMEOUT_SECS),
        sandbox: body.sandbox.unwrap_or_default(),
        max_spawned_sessions: body
            .max_spawned_sessions
            .unwrap_or(DEFAULT_MAX_SPAWNED_SESSIONS),
    };
    let new = NewProject {
        name,
        path: root.to_string_lossy().into_owned(),
        settings,
    };
    let project = state.store.create_project(new, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// Get one project.
#[utoipa::path(get, path = "/projects/{id}", operation_id = "get_project", tag = "projects", params(("id" = i64, Path)),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<Project>> {
    Ok(Json(state.store.get_project(ProjectId(id)).await?))
}

/// Update a project's name or settings; `null` clears an optional setting.
#[utoipa::path(patch, path = "/projects/{id}", operation_id = "update_project", tag = "projects", params(("id" = i64, Path)),
    request_body = ProjectSettingsPatch,
    responses((status = 200, body = Project), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    Json(patch): Json<ProjectSettingsPatch>,
) -> ApiResult<Json<Project>> {
    Ok(Json(
        state
            .store
            .update_project(ProjectId(id), &patch, &caller.actor())
            .await?,
    ))
}
