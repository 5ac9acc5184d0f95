//! Spec review: a version's documents (raw and rendered), its validation report, the
//! diff from the previous version, comments, and the verdicts — approve (recorded in
//! `spec.json` on the task branch), request changes (the planner revises), reject.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use super::spec_files::{self, SPEC_JSON};
use crate::domain::spec_report::{SpecFiles, SpecReport};
use crate::domain::*;
use crate::git;
use crate::store::{NewReviewComment, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// The request is fine but the spec's state does not allow it (409).
    #[error("{0}")]
    Refused(String),
    /// The request names something that cannot be used (422).
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpecDocument {
    pub name: String,
    pub raw: String,
    /// The document rendered to HTML (raw HTML in the markdown is escaped).
    pub html: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpecVersionView {
    pub version: SpecVersion,
    pub documents: Vec<SpecDocument>,
    pub report: SpecReport,
    /// The unified diff of the spec folder from the previous version; none for v1.
    pub diff_from_previous: Option<String>,
    pub comments: Vec<ReviewComment>,
    pub reviews: Vec<Review>,
}

/// Markdown to HTML, with raw HTML shown as text so a spec cannot inject markup
/// into the dashboard.
pub fn render_markdown(text: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, html};
    let parser = Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS).map(
        |e| match e {
            Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
            other => other,
        },
    );
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

pub struct Reviewer {
    store: Arc<dyn Store>,
    tasks_dir: PathBuf,
}

struct Located {
    task: SpecTask,
    repo: PathBuf,
    spec_rel: String,
}

impl Reviewer {
    pub fn new(store: Arc<dyn Store>, tasks_dir: PathBuf) -> Reviewer {
        Reviewer { store, tasks_dir }
    }

    async fn locate(&self, spec_task_id: SpecTaskId) -> Result<Located, ReviewError> {
        let task = self.store.get_spec_task(spec_task_id).await?;
        let project = self.store.get_project(task.project_id).await?;
        let spec_rel = spec_files::spec_dir_rel(&project, &task);
        Ok(Located {
            task,
            repo: PathBuf::from(project.path),
            spec_rel,
        })
    }

    async fn files_at(
        &self,
        at: &Located,
        commit: &str,
    ) -> Result<(SpecFiles, Vec<SpecDocument>), ReviewError> {
        let mut documents = Vec::new();
        for name in [
            "requirements.md",
            "spec.md",
            "design.md",
            "plan.md",
            "tasks.md",
        ] {
            if let Some(raw) =
                git::show(&at.repo, commit, &format!("{}/{name}", at.spec_rel)).await?
            {
                documents.push(SpecDocument {
                    name: name.to_string(),
                    html: render_markdown(&raw),
                    raw,
                });
            }
        }
        let find = |names: &[&str]| {
            names.iter().find_map(|n| {
                documents
                    .iter()
                    .find(|d| d.name == *n)
                    .map(|d| (d.name.clone(), d.raw.clone()))
            })
        };
        let files = SpecFiles {
            requirements: find(&["requirements.md", "spec.md"]),
            design: find(&["design.md", "plan.md"]),
            tasks: find(&["tasks.md"]),
        };
        Ok((files, documents))
    }

    pub async fn view(
        &self,
        spec_task_id: SpecTaskId,
        number: i64,
    ) -> Result<SpecVersionView, ReviewError> {
        let at = self.locate(spec_task_id).await?;
        let version = self.store.get_spec_version(spec_task_id, number).await?;
        let (files, documents) = self.files_at(&at, &version.commit_sha).await?;
        let previous = match number {
            1 => None,
            n => Some(self.store.get_spec_version(spec_task_id, n - 1).await?),
        };
        let diff_from_previous = match previous {
            Some(p) => {
                Some(git::diff(&at.repo, &p.commit_sha, &version.commit_sha, &at.spec_rel).await?)
            }
            None => None,
        };
        Ok(SpecVersionView {
            report: crate::domain::spec_report::check(&files),
            documents,
            diff_from_previous,
            comments: self.store.list_review_comments(version.id).await?,
            reviews: self.store.list_reviews(version.id).await?,
            version,
        })
    }

    /// A comment anchored to a document of a version by lines or by a quote that
    /// must appear in it.
    pub async fn comment(
        &self,
        spec_task_id: SpecTaskId,
        number: i64,
        mut new: NewReviewComment,
    ) -> Result<ReviewComment, ReviewError> {
        let at = self.locate(spec_task_id).await?;
        let version = self.store.get_spec_version(spec_task_id, number).await?;
        if new.body.trim().is_empty() {
            return Err(ReviewError::Invalid("body: must not be empty".into()));
        }
        let (_, documents) = self.files_at(&at, &version.commit_sha).await?;
        let doc = documents
            .iter()
            .find(|d| d.name == new.document)
            .ok_or_else(|| {
                let names: Vec<&str> = documents.iter().map(|d| d.name.as_str()).collect();
                ReviewError::Store(StoreError::Missing(format!(
                    "document: {:?} is not in spec version {number}; it has {}",
                    new.document,
                    names.join(", ")
                )))
            })?;
        let lines = doc.raw.lines().count() as i64;
        match (new.line_start, new.line_end) {
            (Some(a), b) => {
                // A range given backwards is the same range.
                let (a, b) = (a.min(b.unwrap_or(a)), a.max(b.unwrap_or(a)));
                if a < 1 {
                    return Err(ReviewError::Invalid(format!(
                        "lines {a}-{b}: lines are numbered from 1"
                    )));
                }
                if b > lines {
                    return Err(ReviewError::Store(StoreError::Missing(format!(
                        "lines {a}-{b} are not within {} (1-{lines})",
                        new.document
                    ))));
                }
                new.line_start = Some(a);
                new.line_end = Some(b);
            }
            (None, Some(_)) => {
                return Err(ReviewError::Invalid("line_end needs line_start".into()));
            }
            (None, None) => {}
        }
        if let Some(q) = &new.quote
            && !doc.raw.contains(q.as_str())
        {
            return Err(ReviewError::Store(StoreError::Missing(format!(
                "quote: not found in {}",
                new.document
            ))));
        }
        new.spec_version_id = version.id;
        Ok(self
            .store
            .add_review_comment(new.clone(), &new.author)
            .await?)
    }

    async fn latest(&self, task: &SpecTask) -> Result<SpecVersion, ReviewError> {
        self.store
            .list_spec_versions(task.id)
            .await?
            .pop()
            .ok_or_else(|| {
                ReviewError::Refused(format!("spec task {} has no spec version yet", task.id))
            })
    }

    /// Approves the latest spec version (refused if its report has errors), records
    /// the approver and the approved commit in `spec.json`, and commits it.
    pub async fn approve(
        &self,
        spec_task_id: SpecTaskId,
        actor: &str,
    ) -> Result<SpecTask, ReviewError> {
        let at = self.locate(spec_task_id).await?;
        if at.task.status != SpecTaskStatus::SpecReview {
            return Ok(self
                .store
                .transition_spec_task(spec_task_id, &SpecTaskEvent::Approve, actor)
                .await?);
        }
        let version = self.latest(&at.task).await?;
        let (files, _) = self.files_at(&at, &version.commit_sha).await?;
        let report = crate::domain::spec_report::check(&files);
        if !report.is_valid() {
            return Err(ReviewError::Refused(format!(
                "spec version {} cannot be approved; it has errors:\n{}",
                version.number,
                report.error_lines().join("\n")
            )));
        }
        // The approval and its verdict are one store transaction; the `spec.json`
        // commit follows, and the implementer's first step of the task makes it
        // again if a crash came between the two (see `record_approval`).
        let (task, _) = self
            .store
            .review_spec_task(
                spec_task_id,
                &SpecTaskEvent::Approve,
                version.id,
                Verdict::Approved,
                actor,
            )
            .await?;
        self.record_approval(&task).await?;
        Ok(task)
    }

    /// Writes the approval of `task`'s latest spec version into its `spec.json` on
    /// the task branch and commits it, unless the branch already says so: the
    /// approve does it after the store has the approval, and the implementer's
    /// first step of the task calls it again, so an approval a crash interrupted
    /// is finished, never done twice. The file's content comes from the stored
    /// verdict alone, so the two calls would write the same.
    pub async fn record_approval(&self, task: &SpecTask) -> Result<(), ReviewError> {
        let at = self.locate(task.id).await?;
        let Some(version) = self.store.list_spec_versions(task.id).await?.pop() else {
            return Ok(());
        };
        let Some(review) = self
            .store
            .list_reviews(version.id)
            .await?
            .into_iter()
            .rfind(|r| r.verdict == Verdict::Approved)
        else {
            return Ok(());
        };
        // The approving replica and the task's owner may both get here at once.
        let _one_writer = git::branch_lock(&at.repo, &at.task.branch).await;
        // Read from the branch tip, so the usual case (already recorded) touches
        // no worktree.
        let json_rel = format!("{}/{SPEC_JSON}", at.spec_rel);
        let recorded = git::show(&at.repo, &at.task.branch, &json_rel)
            .await?
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|doc| {
                doc["status"] == "approved" && doc["approved_version"] == version.number
            });
        if recorded {
            return Ok(());
        }
        let worktree = spec_files::task_worktree(&self.tasks_dir, &at.task);
        git::ensure_worktree(&at.repo, &worktree, &at.task.branch).await?;
        // Nothing is uncommitted in review; another replica may have planned the
        // version being approved, so this copy is brought to the branch first.
        git::refresh_worktree(&worktree).await?;
        let path = worktree.join(&at.spec_rel).join(SPEC_JSON);
        let extra = serde_json::json!({
            "approved_by": review.reviewer,
            "approved_version": version.number,
            "approved_commit": version.commit_sha,
            "approved_at": review.created_at.to_rfc3339(),
        });
        std::fs::create_dir_all(worktree.join(&at.spec_rel)).map_err(git::GitError::from)?;
        std::fs::write(
            &path,
            spec_files::spec_json(&at.task, version.number, "approved", extra),
        )
        .map_err(git::GitError::from)?;
        let message = format!(
            "spectask #{}: spec v{} approved by {}",
            at.task.id, version.number, review.reviewer
        );
        git::commit_paths(&worktree, &[&at.spec_rel], &message).await?;
        Ok(())
    }

    /// Sends the task back to planning; the planner revises with the open comments.
    pub async fn request_changes(
        &self,
        spec_task_id: SpecTaskId,
        actor: &str,
    ) -> Result<SpecTask, ReviewError> {
        let at = self.locate(spec_task_id).await?;
        let version = match at.task.status {
            SpecTaskStatus::SpecReview => Some(self.latest(&at.task).await?),
            _ => None,
        };
        self.decide(
            spec_task_id,
            &SpecTaskEvent::RequestChanges,
            version,
            Verdict::ChangesRequested,
            actor,
        )
        .await
    }

    /// The transition a verdict causes, with the verdict on `version` in the same
    /// store transaction (or alone, when there is no version to judge).
    async fn decide(
        &self,
        spec_task_id: SpecTaskId,
        event: crate::store::MakeEvent<'_>,
        version: Option<SpecVersion>,
        verdict: Verdict,
        actor: &str,
    ) -> Result<SpecTask, ReviewError> {
        Ok(match version {
            Some(v) => {
                self.store
                    .review_spec_task(spec_task_id, event, v.id, verdict, actor)
                    .await?
                    .0
            }
            None => {
                self.store
                    .transition_spec_task(spec_task_id, event, actor)
                    .await?
            }
        })
    }

    /// Creates a task whose version 1 is an imported spec, in `spec_review`.
    pub async fn import(&self, req: super::import::ImportRequest) -> Result<SpecTask, ReviewError> {
        super::import::import(&self.store, &self.tasks_dir, req).await
    }

    /// Rejects the spec: the task is archived (`rejected`) and its branch kept.
    pub async fn reject(
        &self,
        spec_task_id: SpecTaskId,
        actor: &str,
    ) -> Result<SpecTask, ReviewError> {
        let task = self.store.get_spec_task(spec_task_id).await?;
        let version = self.store.list_spec_versions(task.id).await?.pop();
        self.decide(
            spec_task_id,
            &|_| SpecTaskEvent::Reject,
            version,
            Verdict::Rejected,
            actor,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_renders_and_raw_html_is_escaped() {
        let html = super::render_markdown("# Title\n\n- [ ] task\n\n<script>alert(1)</script>\n");
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}
