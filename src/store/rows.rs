//! Turning rows into domain values. Stored enums are text and timestamps are epoch
//! milliseconds; a value the code does not recognise is a `Corrupt` error, never a
//! panic or a silent default.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, StoreError};
use crate::auth::ApiToken;
use crate::domain::*;

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col).map_err(StoreError::Database)
}

pub(super) fn time(row: &AnyRow, col: &str) -> Result<DateTime<Utc>> {
    Ok(ts(get::<i64>(row, col)?))
}

fn opt_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(get::<Option<i64>>(row, col)?.map(ts))
}

fn parsed<T: std::str::FromStr<Err = UnknownValue>>(row: &AnyRow, col: &str) -> Result<T> {
    get::<String>(row, col)?
        .parse()
        .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))
}

fn opt_parsed<T: std::str::FromStr<Err = UnknownValue>>(
    row: &AnyRow,
    col: &str,
) -> Result<Option<T>> {
    get::<Option<String>>(row, col)?
        .map(|s| {
            s.parse()
                .map_err(|e: UnknownValue| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
}

fn json(row: &AnyRow, col: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&get::<String>(row, col)?)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub const TOKEN_COLUMNS: &str = "id, name, created_at, revoked_at";

pub fn token(row: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: get(row, "id")?,
        name: get(row, "name")?,
        created_at: time(row, "created_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

pub const PROJECT_COLUMNS: &str = "id, name, path, base_branch, spec_folder, verification_command, \
    planning_wip_limit, implementation_wip_limit, max_parallel_sessions, permission_policy, conflict_policy, review_implementation, \
    max_attempts, empty_session, turn_timeout_secs, verify_timeout_secs, sandbox, max_spawned_sessions, created_at, updated_at";

pub fn project(row: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: get(row, "id")?,
        name: get(row, "name")?,
        path: get(row, "path")?,
        settings: ProjectSettings {
            base_branch: get(row, "base_branch")?,
            spec_folder: get(row, "spec_folder")?,
            verification_command: get(row, "verification_command")?,
            planning_wip_limit: get(row, "planning_wip_limit")?,
            implementation_wip_limit: get(row, "implementation_wip_limit")?,
            max_parallel_sessions: get(row, "max_parallel_sessions")?,
            permission_policy: parsed(row, "permission_policy")?,
            conflict_policy: parsed(row, "conflict_policy")?,
            review_implementation: get::<i64>(row, "review_implementation")? != 0,
            max_attempts: get(row, "max_attempts")?,
            empty_session: parsed(row, "empty_session")?,
            turn_timeout_secs: get(row, "turn_timeout_secs")?,
            verify_timeout_secs: get(row, "verify_timeout_secs")?,
            sandbox: parsed(row, "sandbox")?,
            max_spawned_sessions: get(row, "max_spawned_sessions")?,
        },
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub const SPEC_TASK_COLUMNS: &str = "id, project_id, title, description, prompt, priority, task_type, \
    status, failed_phase, failure_reason, slug, max_parallel_sessions, agent_profile, created_at, updated_at";

pub fn spec_task(row: &AnyRow) -> Result<SpecTask> {
    let id: SpecTaskId = get(row, "id")?;
    let slug: String = get(row, "slug")?;
    Ok(SpecTask {
        id,
        project_id: get(row, "project_id")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        prompt: get(row, "prompt")?,
        priority: parsed(row, "priority")?,
        task_type: parsed(row, "task_type")?,
        status: parsed(row, "status")?,
        failed_phase: opt_parsed(row, "failed_phase")?,
        failure_reason: get(row, "failure_reason")?,
        branch: SpecTask::branch_name(id, &slug),
        spec_dir_name: SpecTask::spec_dir_name(id, &slug),
        slug,
        max_parallel_sessions: get(row, "max_parallel_sessions")?,
        agent_profile: get(row, "agent_profile")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub const WORK_SESSION_COLUMNS: &str = "id, spec_task_id, parent_id, implementation_task_id, kind, name, \
    prompt, status, failure_reason, attempt, branch, worktree_path, \
    input_tokens, output_tokens, cost_usd, created_at, updated_at";

pub fn work_session(row: &AnyRow) -> Result<WorkSession> {
    Ok(WorkSession {
        id: get(row, "id")?,
        spec_task_id: get(row, "spec_task_id")?,
        parent_id: get(row, "parent_id")?,
        implementation_task_id: get(row, "implementation_task_id")?,
        kind: parsed(row, "kind")?,
        name: get(row, "name")?,
        prompt: get(row, "prompt")?,
        status: parsed(row, "status")?,
        failure_reason: get(row, "failure_reason")?,
        attempt: get(row, "attempt")?,
        branch: get(row, "branch")?,
        worktree_path: get(row, "worktree_path")?,
        input_tokens: get(row, "input_tokens")?,
        output_tokens: get(row, "output_tokens")?,
        cost_usd: get(row, "cost_usd")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub const COORDINATION_COLUMNS: &str = "id, spec_task_id, kind, from_session_id, to_session_id, message, \
    payload, acknowledged_at, acknowledged_by, created_at";

pub fn coordination_event(row: &AnyRow) -> Result<CoordinationEvent> {
    Ok(CoordinationEvent {
        id: get(row, "id")?,
        spec_task_id: get(row, "spec_task_id")?,
        kind: parsed(row, "kind")?,
        from_session_id: get(row, "from_session_id")?,
        to_session_id: get(row, "to_session_id")?,
        message: get(row, "message")?,
        payload: json(row, "payload")?,
        acknowledged_at: opt_time(row, "acknowledged_at")?,
        acknowledged_by: get(row, "acknowledged_by")?,
        created_at: time(row, "created_at")?,
    })
}

pub const SHARED_STATE_COLUMNS: &str = "spec_task_id, state_key, value, version, updated_at";

pub fn shared_state(row: &AnyRow) -> Result<SharedStateEntry> {
    Ok(SharedStateEntry {
        spec_task_id: get(row, "spec_task_id")?,
        key: get(row, "state_key")?,
        value: json(row, "value")?,
        version: get(row, "version")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub const EVENT_COLUMNS: &str =
    "id, project_id, spec_task_id, entity, entity_id, kind, data, actor, created_at";

pub fn event(row: &AnyRow) -> Result<Event> {
    Ok(Event {
        id: get(row, "id")?,
        project_id: get(row, "project_id")?,
        spec_task_id: get(row, "spec_task_id")?,
        entity: get(row, "entity")?,
        entity_id: get(row, "entity_id")?,
        kind: get(row, "kind")?,
        data: json(row, "data")?,
        actor: get(row, "actor")?,
        created_at: time(row, "created_at")?,
    })
}

pub const AGENT_INSTANCE_COLUMNS: &str = "id, spec_task_id, profile, status, pid, last_error, agent_name, \
    agent_version, restarts, cpu_percent, rss_bytes, sampled_at, held_at, created_at, updated_at";

pub fn agent_instance(row: &AnyRow) -> Result<AgentInstance> {
    Ok(AgentInstance {
        id: get(row, "id")?,
        spec_task_id: get(row, "spec_task_id")?,
        profile: get(row, "profile")?,
        status: parsed(row, "status")?,
        pid: get(row, "pid")?,
        last_error: get(row, "last_error")?,
        agent_name: get(row, "agent_name")?,
        agent_version: get(row, "agent_version")?,
        restarts: get(row, "restarts")?,
        cpu_percent: get(row, "cpu_percent")?,
        rss_bytes: get(row, "rss_bytes")?,
        sampled_at: opt_time(row, "sampled_at")?,
        held_at: opt_time(row, "held_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

pub const AGENT_THREAD_COLUMNS: &str =
    "id, agent_instance_id, work_session_id, acp_session_id, status";

pub fn agent_thread(row: &AnyRow) -> Result<AgentThread> {
    Ok(AgentThread {
        id: get(row, "id")?,
        agent_instance_id: get(row, "agent_instance_id")?,
        work_session_id: get(row, "work_session_id")?,
        acp_session_id: get(row, "acp_session_id")?,
        status: parsed(row, "status")?,
    })
}

pub const TRANSCRIPT_COLUMNS: &str =
    "id, spec_task_id, work_session_id, kind, content, data, created_at";

pub fn transcript_entry(row: &AnyRow) -> Result<TranscriptEntry> {
    Ok(TranscriptEntry {
        id: get(row, "id")?,
        spec_task_id: get(row, "spec_task_id")?,
        work_session_id: get(row, "work_session_id")?,
        kind: parsed(row, "kind")?,
        content: get(row, "content")?,
        data: json(row, "data")?,
        created_at: time(row, "created_at")?,
    })
}

pub const PERMISSION_COLUMNS: &str = "id, spec_task_id, work_session_id, title, tool_call, options, status, \
    option_id, created_at, resolved_at";

pub fn permission_request(row: &AnyRow) -> Result<PermissionRequest> {
    Ok(PermissionRequest {
        id: get(row, "id")?,
        spec_task_id: get(row, "spec_task_id")?,
        work_session_id: get(row, "work_session_id")?,
        title: get(row, "title")?,
        tool_call: json(row, "tool_call")?,
        options: json(row, "options")?,
        status: parsed(row, "status")?,
        option_id: get(row, "option_id")?,
        created_at: time(row, "created_at")?,
        resolved_at: opt_time(row, "resolved_at")?,
    })
}

pub const SPEC_VERSION_COLUMNS: &str = "id, spec_task_id, number, commit_sha, created_at";

pub fn spec_version(row: &AnyRow) -> Result<SpecVersion> {
    Ok(SpecVersion {
        id: get(row, "id")?,
        spec_task_id: get(row, "spec_task_id")?,
        number: get(row, "number")?,
        commit_sha: get(row, "commit_sha")?,
        created_at: time(row, "created_at")?,
    })
}

pub const REVIEW_COMMENT_COLUMNS: &str = "id, spec_version_id, author, document, line_start, line_end, quote, body, resolved_at, created_at";

pub fn review_comment(row: &AnyRow) -> Result<ReviewComment> {
    Ok(ReviewComment {
        id: get(row, "id")?,
        spec_version_id: get(row, "spec_version_id")?,
        author: get(row, "author")?,
        document: get(row, "document")?,
        line_start: get(row, "line_start")?,
        line_end: get(row, "line_end")?,
        quote: get(row, "quote")?,
        body: get(row, "body")?,
        resolved: get::<Option<i64>>(row, "resolved_at")?.is_some(),
        created_at: time(row, "created_at")?,
    })
}

pub const REVIEW_COLUMNS: &str = "id, spec_version_id, reviewer, verdict, created_at";

pub fn review(row: &AnyRow) -> Result<Review> {
    Ok(Review {
        id: get(row, "id")?,
        spec_version_id: get(row, "spec_version_id")?,
        reviewer: get(row, "reviewer")?,
        verdict: parsed(row, "verdict")?,
        created_at: time(row, "created_at")?,
    })
}

pub const IMPLEMENTATION_TASK_COLUMNS: &str = "id, spec_task_id, task_key, title, details, status, depends_on, requirements, optional, parallel";

pub fn implementation_task(row: &AnyRow) -> Result<ImplementationTask> {
    let list = |col: &str| -> Result<Vec<String>> {
        serde_json::from_value(json(row, col)?)
            .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    };
    Ok(ImplementationTask {
        id: get(row, "id")?,
        spec_task_id: get(row, "spec_task_id")?,
        key: get(row, "task_key")?,
        title: get(row, "title")?,
        details: get(row, "details")?,
        status: parsed(row, "status")?,
        depends_on: list("depends_on")?,
        requirements: list("requirements")?,
        optional: get::<i64>(row, "optional")? != 0,
        parallel: get::<i64>(row, "parallel")? != 0,
    })
}
