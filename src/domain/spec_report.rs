//! The validation report of a spec: what a reviewer (and `spectask spec check`) sees.
//! It lists the requirements with each criterion's EARS pattern, the tasks as a graph,
//! the coverage matrix requirement → tasks, errors (which block approval) and
//! warnings (shown in review).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::requirements::{RequirementsDoc, parse_requirements};
use super::tasks_md::{self, GraphError, TasksDoc};

/// The documents of one spec version as (file name, text). Kiro names:
/// `requirements.md`, `design.md`, `tasks.md`; spec-kit's `spec.md` and `plan.md`
/// stand for the requirements and the design.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecFiles {
    pub requirements: Option<(String, String)>,
    pub design: Option<(String, String)>,
    pub tasks: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// The document it is about, e.g. `tasks.md`.
    pub document: String,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CriterionSummary {
    pub id: String,
    pub text: String,
    /// `ubiquitous`, `event_driven`, `state_driven`, `unwanted_behaviour`,
    /// `optional_feature`, `complex`, `gherkin` or `not_ears`.
    pub pattern: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequirementSummary {
    pub id: String,
    pub title: String,
    pub criteria: Vec<CriterionSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TaskSummary {
    pub key: String,
    pub title: String,
    pub line: usize,
    /// `pending`, `in_progress` or `done`.
    pub status: String,
    pub optional: bool,
    pub parallel: bool,
    /// The tasks it waits for (explicit, implicit order, or an earlier phase).
    pub depends: Vec<String>,
    pub requirements: Vec<String>,
    /// Keys of its checklist (sub-items at any depth).
    pub sub_items: Vec<String>,
    pub phase: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Coverage {
    pub requirement: String,
    /// The top-level tasks linked to the requirement or one of its criteria.
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpecReport {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub requirements: Vec<RequirementSummary>,
    pub tasks: Vec<TaskSummary>,
    pub coverage: Vec<Coverage>,
}

impl SpecReport {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors as lines for a person or a follow-up prompt.
    pub fn error_lines(&self) -> Vec<String> {
        self.errors.iter().map(finding_line).collect()
    }

    /// The report for a person.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        if !self.requirements.is_empty() {
            let criteria: Vec<&CriterionSummary> =
                self.requirements.iter().flat_map(|r| &r.criteria).collect();
            let mut by_pattern: BTreeMap<&str, usize> = BTreeMap::new();
            for c in &criteria {
                *by_pattern.entry(c.pattern.as_str()).or_default() += 1;
            }
            let patterns: Vec<String> =
                by_pattern.iter().map(|(p, n)| format!("{p} {n}")).collect();
            out.push_str(&format!(
                "requirements: {} with {} criteria ({})\n",
                self.requirements.len(),
                criteria.len(),
                patterns.join(", ")
            ));
        }
        if !self.tasks.is_empty() {
            out.push_str(&format!("tasks: {}\n", self.tasks.len()));
            for t in &self.tasks {
                let after = if t.depends.is_empty() {
                    String::new()
                } else {
                    format!(" (after {})", t.depends.join(", "))
                };
                out.push_str(&format!("  {} {}{after}\n", t.key, t.title));
            }
        }
        if !self.coverage.is_empty() {
            out.push_str("coverage:\n");
            for c in &self.coverage {
                let tasks = if c.tasks.is_empty() {
                    "-".to_string()
                } else {
                    c.tasks.join(", ")
                };
                out.push_str(&format!("  requirement {} → {tasks}\n", c.requirement));
            }
        }
        for (title, findings) in [("errors", &self.errors), ("warnings", &self.warnings)] {
            out.push_str(&format!("{title}: {}\n", findings.len()));
            for f in findings {
                out.push_str(&format!("  {}\n", finding_line(f)));
            }
        }
        out
    }
}

fn finding_line(f: &Finding) -> String {
    match f.line {
        Some(line) => format!("{}:{line}: {}", f.document, f.message),
        None => format!("{}: {}", f.document, f.message),
    }
}

fn finding(document: &str, line: Option<usize>, message: impl Into<String>) -> Finding {
    Finding {
        document: document.to_string(),
        line,
        message: message.into(),
    }
}

/// Checks a whole spec: every document must be present.
pub fn check(files: &SpecFiles) -> SpecReport {
    check_documents(files, true)
}

/// Checks the documents that are there (`spectask spec check tasks.md`).
pub fn check_present(files: &SpecFiles) -> SpecReport {
    check_documents(files, false)
}

fn check_documents(files: &SpecFiles, require_all: bool) -> SpecReport {
    let mut report = SpecReport::default();
    for (name, doc) in [
        ("requirements.md", &files.requirements),
        ("design.md", &files.design),
        ("tasks.md", &files.tasks),
    ] {
        match doc {
            None if require_all => report
                .errors
                .push(finding(name, None, "the file is missing")),
            Some((shown, text)) if text.trim().is_empty() => {
                report
                    .errors
                    .push(finding(shown, None, "the file is empty"))
            }
            _ => {}
        }
    }
    let requirements = files
        .requirements
        .as_ref()
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(name, text)| (name.as_str(), parse_requirements(text)));
    if let Some((name, doc)) = &requirements {
        check_requirements(&mut report, name, doc);
    }
    if let Some((name, text)) = files.tasks.as_ref().filter(|(_, t)| !t.trim().is_empty()) {
        let doc = tasks_md::parse(text);
        check_tasks(
            &mut report,
            name,
            &doc,
            requirements.as_ref().map(|(n, d)| (*n, d)),
        );
    }
    report
}

fn check_requirements(report: &mut SpecReport, name: &str, doc: &RequirementsDoc) {
    if doc.requirements.is_empty() {
        report
            .errors
            .push(finding(name, None, "no numbered requirements found"));
    }
    for p in &doc.problems {
        report
            .warnings
            .push(finding(name, Some(p.line), &p.message));
    }
    for r in &doc.requirements {
        let mut criteria = Vec::new();
        for c in &r.criteria {
            if !c.pattern.is_ears() {
                let what = match c.pattern.as_str() {
                    "gherkin" => "is a Given/When/Then scenario, not an EARS criterion",
                    _ => "is not in EARS form (WHEN/WHILE/IF/WHERE … SHALL, or The … SHALL)",
                };
                report.warnings.push(finding(
                    name,
                    Some(c.line),
                    format!("criterion {} {what}", c.id),
                ));
            }
            criteria.push(CriterionSummary {
                id: c.id.clone(),
                text: c.text.clone(),
                pattern: c.pattern.as_str().to_string(),
                line: c.line,
            });
        }
        report.requirements.push(RequirementSummary {
            id: r.id.clone(),
            title: r.title.clone(),
            criteria,
        });
    }
}

/// The index of the top-level item an item belongs to.
fn unit_of(doc: &TasksDoc, mut index: usize) -> usize {
    while let Some(parent) = doc.items[index].parent {
        index = parent;
    }
    index
}

fn check_tasks(
    report: &mut SpecReport,
    name: &str,
    doc: &TasksDoc,
    requirements: Option<(&str, &RequirementsDoc)>,
) {
    if doc.top_level().next().is_none() {
        report.errors.push(finding(
            name,
            None,
            "no tasks found (expected `- [ ] 1. Title` items)",
        ));
    }
    for p in &doc.problems {
        report.errors.push(finding(name, Some(p.line), &p.message));
    }
    let graph = tasks_md::graph(doc);
    for e in tasks_md::check_graph(doc, &graph) {
        let line = match &e {
            GraphError::UnknownDependency { line, .. } => Some(*line),
            GraphError::Cycle { .. } => None,
        };
        report.errors.push(finding(name, line, e.to_string()));
    }
    let deps: BTreeMap<&str, &Vec<String>> = graph
        .nodes
        .iter()
        .map(|n| (n.key.as_str(), &n.depends))
        .collect();
    let mut covered: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (index, item) in doc.items.iter().enumerate() {
        let unit = &doc.items[unit_of(doc, index)];
        for link in &item.requirements {
            let Some((req_name, reqs)) = requirements else {
                continue;
            };
            match reqs.requirement_of(link) {
                Some(r) => {
                    let tasks = covered.entry(r.id.clone()).or_default();
                    if !tasks.contains(&unit.key) {
                        tasks.push(unit.key.clone());
                    }
                }
                None => report.errors.push(finding(
                    name,
                    Some(item.line),
                    format!(
                        "task {} links to requirement {link}, which is not in {req_name}",
                        item.key
                    ),
                )),
            }
        }
        if item.depth == 0 {
            let sub_items = doc
                .items
                .iter()
                .enumerate()
                .filter(|(i, it)| *i != index && unit_of(doc, *i) == index && it.depth > 0)
                .map(|(_, it)| it.key.clone())
                .collect();
            report.tasks.push(TaskSummary {
                key: item.key.clone(),
                title: item.title.clone(),
                line: item.line,
                status: serde_json::to_value(item.mark)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                optional: item.optional,
                parallel: item.parallel,
                depends: deps
                    .get(item.key.as_str())
                    .map(|d| d.to_vec())
                    .unwrap_or_default(),
                requirements: item.requirements.clone(),
                sub_items,
                phase: item.phase.clone(),
            });
        }
    }
    if let Some((req_name, reqs)) = requirements {
        for r in &reqs.requirements {
            let tasks = covered.remove(&r.id).unwrap_or_default();
            if tasks.is_empty() {
                report.warnings.push(finding(
                    req_name,
                    None,
                    format!("requirement {} ({}) is covered by no task", r.id, r.title),
                ));
            }
            report.coverage.push(Coverage {
                requirement: r.id.clone(),
                tasks,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(req: &str, tasks: &str) -> SpecFiles {
        SpecFiles {
            requirements: Some(("requirements.md".into(), req.into())),
            design: Some(("design.md".into(), "# Design\n".into())),
            tasks: Some(("tasks.md".into(), tasks.into())),
        }
    }

    const REQ: &str = "# Requirements\n\n### Requirement 1: A\n\n**User Story:** As a user, I want a, so that b.\n\n\
        #### Acceptance Criteria\n\n1. WHEN x THEN the system SHALL y\n2. The system must be fast\n\n\
        ### Requirement 2: B\n\n#### Acceptance Criteria\n\n1. The system SHALL z\n";

    #[test]
    fn a_good_spec_has_coverage_and_no_errors() {
        let report = check(&files(
            REQ,
            "- [ ] 1. Do A\n  - _Requirements: 1.1_\n- [ ] 2. Do B\n  - _Requirements: 2.1_\n",
        ));
        assert!(report.is_valid(), "{:?}", report.errors);
        assert_eq!(report.coverage.len(), 2);
        assert_eq!(report.coverage[0].tasks, ["1"]);
        assert_eq!(report.tasks[1].depends, ["1"]);
        // Criterion 1.2 has no SHALL: a warning, not an error.
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].message.contains("1.2"));
        assert_eq!(report.requirements[0].criteria[0].pattern, "event_driven");
    }

    #[test]
    fn cycles_unknown_links_and_missing_files_are_errors() {
        let tasks =
            "- [ ] 1. A\n  - _Requirements: 9.9_\n  - _Depends: 2_\n- [ ] 2. B\n  - _Depends: 1_\n";
        let report = check(&files(REQ, tasks));
        let text = report.error_lines().join("\n");
        assert!(text.contains("cycle"), "{text}");
        assert!(text.contains("requirement 9.9"), "{text}");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.message.contains("covered by no task"))
        );
        let missing = check(&SpecFiles::default());
        assert_eq!(missing.errors.len(), 3);
        assert!(check_present(&SpecFiles::default()).is_valid());
    }
}
