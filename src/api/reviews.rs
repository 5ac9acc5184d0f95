//! Spec review over HTTP: versions (documents raw and rendered, validation report,
//! diff from the previous version), comments, resolving them, and importing a spec.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, Path};
use super::{AppState, Caller};
use crate::domain::*;
use crate::orchestrator::import::ImportRequest;
use crate::orchestrator::review::{ReviewError, SpecVersionView};
use crate::store::NewReviewComment;

impl From<ReviewError> for ApiError {
    fn from(err: ReviewError) -> ApiError {
        match err {
            ReviewError::Store(e) => e.into(),
            ReviewError::Refused(m) => ApiError::Conflict(m),
            ReviewError::Invalid(m) => ApiError::Validation(m),
            ReviewError::Git(e) => ApiError::Internal(e.into()),
        }
    }
}

/// The spec versions of a task, oldest first.
#[utoipa::path(get, path = "/spec-tasks/{id}/spec-versions", tag = "review", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<SpecVersion>), (status = 404, body = ErrorBody)))]
pub async fn list_versions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<SpecVersion>>> {
    Ok(Json(state.store.list_spec_versions(SpecTaskId(id)).await?))
}

/// One spec version: documents (raw and HTML), validation report, diff from the
/// previous version, comments and verdicts.
#[utoipa::path(get, path = "/spec-tasks/{id}/spec-versions/{number}", tag = "review",
    params(("id" = i64, Path), ("number" = i64, Path)),
    responses((status = 200, body = SpecVersionView), (status = 404, body = ErrorBody)))]
pub async fn get_version(
    State(state): State<AppState>,
    Path((id, number)): Path<(i64, i64)>,
) -> ApiResult<Json<SpecVersionView>> {
    Ok(Json(state.reviewer.view(SpecTaskId(id), number).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddComment {
    /// The document, e.g. `requirements.md`.
    pub document: String,
    /// First line (1-based) of the passage; with `line_end` for a range (given
    /// backwards, it is the same range). Lines past the document's end are 404.
    #[schema(minimum = 1)]
    pub line_start: Option<i64>,
    /// Only with `line_start`.
    #[schema(minimum = 1)]
    pub line_end: Option<i64>,
    /// A passage of the document the comment is about (must appear in it, else 404).
    pub quote: Option<String>,
    /// Not blank.
    pub body: String,
}

/// Comment on a document of a spec version.
#[utoipa::path(post, path = "/spec-tasks/{id}/spec-versions/{number}/comments", tag = "review",
    params(("id" = i64, Path), ("number" = i64, Path)), request_body = AddComment,
    responses((status = 201, body = ReviewComment),
              (status = 404, body = ErrorBody, description = "no such task, version, document, lines or quote"),
              (status = 422, body = ErrorBody)))]
pub async fn add_comment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((id, number)): Path<(i64, i64)>,
    Json(body): Json<AddComment>,
) -> ApiResult<(StatusCode, Json<ReviewComment>)> {
    let new = NewReviewComment {
        spec_version_id: 0,
        author: caller.actor(),
        document: body.document,
        line_start: body.line_start,
        line_end: body.line_end,
        quote: body.quote,
        body: body.body,
    };
    let comment = state.reviewer.comment(SpecTaskId(id), number, new).await?;
    Ok((StatusCode::CREATED, Json(comment)))
}

/// Mark a review comment resolved.
#[utoipa::path(post, path = "/review-comments/{id}/resolve", tag = "review", params(("id" = i64, Path)),
    responses((status = 200, body = ReviewComment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resolve_comment(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ReviewComment>> {
    Ok(Json(
        state
            .store
            .resolve_review_comment(id, &caller.actor())
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSpec {
    /// Required when more than one project is registered.
    pub project_id: Option<i64>,
    /// Not blank.
    pub title: String,
    /// Where the spec came from (e.g. `.kiro/specs/login`).
    pub source: Option<String>,
    /// The spec's files by name: `requirements.md`, `design.md`, `tasks.md` (Kiro) or
    /// `spec.md`, `plan.md`, `tasks.md` (spec-kit), and any other `.md` beside them.
    /// `tasks.md` is required; names are plain `.md` or `.json` file names (not
    /// `spec.json`) or `.config.kiro`.
    pub files: std::collections::BTreeMap<String, String>,
}

/// Import an existing Kiro or spec-kit spec as a new task in `spec_review`, with the
/// spec as version 1 on its branch.
#[utoipa::path(post, path = "/spec-tasks/import", tag = "review", request_body = ImportSpec,
    responses((status = 201, body = SpecTask), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "no `project_id`, and not exactly one project is registered; or the project's base branch does not exist"),
              (status = 422, body = ErrorBody)))]
pub async fn import_spec(
    State(state): State<AppState>,
    Json(body): Json<ImportSpec>,
) -> ApiResult<(StatusCode, Json<SpecTask>)> {
    let project_id = match body.project_id {
        Some(id) => id,
        None => super::spec_tasks::default_project(&state).await?,
    };
    let request = ImportRequest {
        project_id: ProjectId(project_id),
        source: body.source.unwrap_or_else(|| body.title.clone()),
        title: body.title,
        files: body.files,
    };
    let task = state.reviewer.import(request).await?;
    Ok((StatusCode::CREATED, Json(task)))
}
