//! What a session is told: the implementation template filled with its task, the
//! text of the requirements it links, the part of the design that concerns it, what
//! its finished dependencies handed off, the task's shared state, and the messages
//! waiting for it. The text pieces are pure functions, tested below.

use std::path::Path;

use super::*;
use crate::domain::requirements::parse_requirements;

/// At most this much of the design goes into a prompt when no section matches.
const DESIGN_FALLBACK_CHARS: usize = 4000;
/// A finished session's summary is cut to this many characters.
pub(super) const SUMMARY_CHARS: usize = 1500;

impl Implementer {
    /// The first prompt of a session of `item`.
    pub(super) async fn first_prompt(
        &self,
        task: &SpecTask,
        project: &Project,
        item: &ImplementationTask,
        session_id: WorkSessionId,
        worktree: &Path,
    ) -> Result<String, ImplError> {
        let task_worktree = self.task_worktree(task);
        let spec_dir = task_worktree.join(spec_files::spec_dir_rel(project, task));
        let template = std::fs::read_to_string(task_worktree.join(PROJECT_TEMPLATE))
            .unwrap_or_else(|_| IMPLEMENTATION_TEMPLATE.to_string());
        let read = |name: &str| std::fs::read_to_string(spec_dir.join(name)).unwrap_or_default();
        let requirements = requirements_text(&read("requirements.md"), &item.requirements);
        let design = design_part(&read("design.md"), item);
        let handoffs = self.handoffs(task.id, item).await?;
        let shared = self
            .store
            .list_shared_state(task.id)
            .await?
            .into_iter()
            .map(|e| format!("- {} (version {}): {}", e.key, e.version, e.value))
            .collect::<Vec<_>>()
            .join("\n");
        let prompt = spec_files::render(
            &template,
            &[
                ("spec_title", &task.title),
                ("worktree", &worktree.display().to_string()),
                ("key", &item.key),
                ("title", &item.title),
                ("details", &item.details),
                ("requirements", &or_none(&requirements)),
                ("design", &or_none(&design)),
                ("handoffs", &or_none(&handoffs)),
                ("shared_state", &or_none(&shared)),
                ("spec_dir", &spec_dir.display().to_string()),
            ],
        );
        Ok(prompt + &self.deliver(task.id, session_id).await?)
    }

    /// What the finished sessions this task depends on handed off: their
    /// `completion` summaries and any `handoff` they posted.
    async fn handoffs(
        &self,
        spec_task_id: SpecTaskId,
        item: &ImplementationTask,
    ) -> Result<String, ImplError> {
        let plan = self.store.list_implementation_tasks(spec_task_id).await?;
        let sessions = self.store.list_work_sessions(spec_task_id).await?;
        let key_of_session = |sid: WorkSessionId| {
            sessions
                .iter()
                .find(|s| s.id == sid)
                .and_then(|s| s.implementation_task_id)
                .and_then(|tid| plan.iter().find(|t| t.id == tid))
                .map(|t| t.key.as_str())
        };
        let mut out = Vec::new();
        for e in self.store.list_coordination_events(spec_task_id).await? {
            let from_dependency = e
                .from_session_id
                .and_then(key_of_session)
                .is_some_and(|k| item.depends_on.iter().any(|d| d == k));
            // An agent's own summary is carried by the merge's completion event.
            if from_dependency
                && !e.is_summary()
                && matches!(
                    e.kind,
                    CoordinationKind::Completion | CoordinationKind::Handoff
                )
            {
                out.push(format!(
                    "[{} from session {}] {}",
                    e.kind,
                    e.from_session_id.map_or(0, i64::from),
                    e.message
                ));
            }
        }
        Ok(out.join("\n\n"))
    }
}

fn or_none(text: &str) -> String {
    if text.trim().is_empty() {
        "(none)".to_string()
    } else {
        text.to_string()
    }
}

/// The linked requirements written out: each requirement once, with its user story
/// and its criteria (the linked ones marked), or the link itself when the document
/// does not resolve it.
pub fn requirements_text(requirements_md: &str, links: &[String]) -> String {
    let doc = parse_requirements(requirements_md);
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for link in links {
        let Some(req) = doc.requirement_of(link) else {
            out.push(format!("- {link} (not found in requirements.md)"));
            continue;
        };
        if seen.contains(&req.id) {
            continue;
        }
        seen.push(req.id.clone());
        let mut text = format!("{}: {}", req.source_id, req.title);
        if let Some(story) = &req.user_story {
            text.push_str(&format!("\n  {story}"));
        }
        for c in &req.criteria {
            let linked = links
                .iter()
                .any(|l| doc.criterion(l).is_some_and(|lc| lc.id == c.id));
            let mark = if linked { " (this task)" } else { "" };
            text.push_str(&format!("\n  {}. {}{mark}", c.id, c.text));
        }
        out.push(text);
    }
    out.join("\n")
}

/// The design sections (by `##`/`###` heading) that mention the task's title words
/// or its requirement links; the start of the design when none does.
pub fn design_part(design_md: &str, item: &ImplementationTask) -> String {
    let words: Vec<String> = item
        .title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 5)
        .map(str::to_lowercase)
        .collect();
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in design_md.lines() {
        if line.starts_with("## ") || line.starts_with("### ") || sections.is_empty() {
            sections.push((line.to_string(), String::new()));
        }
        let last = sections.last_mut().expect("a section was pushed");
        last.1.push_str(line);
        last.1.push('\n');
    }
    let relevant: Vec<&str> = sections
        .iter()
        .filter(|(heading, body)| {
            let lower = body.to_lowercase();
            heading.starts_with('#')
                && (words.iter().any(|w| lower.contains(w.as_str()))
                    || item
                        .requirements
                        .iter()
                        .any(|r| body.contains(&format!("Requirement {r}"))))
        })
        .map(|(_, body)| body.trim_end())
        .collect();
    if !relevant.is_empty() {
        return relevant.join("\n\n");
    }
    let mut start: String = design_md.chars().take(DESIGN_FALLBACK_CHARS).collect();
    if start.len() < design_md.len() {
        start.push_str("\n…");
    }
    start.trim_end().to_string()
}

/// A finished session's summary for the sessions that depend on it: the agent's last
/// message, cut to [`SUMMARY_CHARS`], and the files its branch changed.
pub fn summary(last_message: Option<&str>, files: &[String]) -> String {
    let mut text = match last_message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) if m.chars().count() > SUMMARY_CHARS => {
            m.chars().take(SUMMARY_CHARS).collect::<String>() + "…"
        }
        Some(m) => m.to_string(),
        None => "(the agent left no message)".to_string(),
    };
    if !files.is_empty() {
        text.push_str(&format!("\nFiles changed: {}", files.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(title: &str, requirements: &[&str]) -> ImplementationTask {
        ImplementationTask {
            id: ImplementationTaskId(1),
            spec_task_id: SpecTaskId(1),
            key: "1".into(),
            title: title.into(),
            details: String::new(),
            status: ImplementationTaskStatus::Pending,
            depends_on: vec![],
            requirements: requirements.iter().map(|r| r.to_string()).collect(),
            optional: false,
            parallel: false,
        }
    }

    const REQUIREMENTS: &str = "# Requirements

### Requirement 1: Login

**User Story:** As a user, I want to log in, so that I see my data.

#### Acceptance Criteria

1. WHEN a user submits valid credentials THE system SHALL open a session
2. WHEN a user submits bad credentials THE system SHALL refuse them

### Requirement 2: Logout

#### Acceptance Criteria

1. WHEN a user logs out THE system SHALL end the session
";

    #[test]
    fn linked_requirements_are_written_out_once_with_the_linked_criteria_marked() {
        let text = requirements_text(REQUIREMENTS, &["1.2".into(), "1.1".into(), "9".into()]);
        assert_eq!(text.matches("Login").count(), 1, "{text}");
        assert!(
            text.contains(
                "2. WHEN a user submits bad credentials THE system SHALL refuse them (this task)"
            ),
            "{text}"
        );
        assert!(text.contains("As a user, I want to log in"), "{text}");
        assert!(!text.contains("Logout"), "{text}");
        assert!(
            text.contains("- 9 (not found in requirements.md)"),
            "{text}"
        );
    }

    #[test]
    fn the_design_part_is_the_sections_that_concern_the_task() {
        let design = "# Design\n\nOverview.\n\n## Sessions store\n\nTokens live in Redis.\n\n## Login form\n\nA form.\n\n## Metrics\n\nCounters (Requirement 2).\n";
        let part = design_part(design, &item("Build the login form", &[]));
        assert_eq!(part, "## Login form\n\nA form.");
        let part = design_part(design, &item("Other work", &["2"]));
        assert_eq!(part, "## Metrics\n\nCounters (Requirement 2).");
        // Nothing matches: the start of the design.
        let part = design_part(design, &item("Zzz", &[]));
        assert!(part.starts_with("# Design\n\nOverview."), "{part}");
    }

    #[test]
    fn a_summary_is_the_last_message_cut_short_with_the_files() {
        let long = "x".repeat(SUMMARY_CHARS + 10);
        let s = summary(Some(&long), &["a.rs".into()]);
        assert_eq!(s.chars().filter(|c| *c == 'x').count(), SUMMARY_CHARS);
        assert!(s.ends_with("…\nFiles changed: a.rs"));
        assert_eq!(summary(None, &[]), "(the agent left no message)");
    }
}
