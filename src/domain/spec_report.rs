//! The validation report of a spec: what a reviewer (and `spectask spec check`) sees.
//! Errors block approval; warnings are shown in review.

use serde::Serialize;

/// The documents of one spec version, as text. Kiro names: `requirements.md`,
/// `design.md`, `tasks.md`; spec-kit's `spec.md` stands for the requirements.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecFiles {
    pub requirements: Option<(String, String)>,
    pub design: Option<(String, String)>,
    pub tasks: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// The document it is about, e.g. `tasks.md`.
    pub document: String,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SpecReport {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl SpecReport {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors as lines for a person or a follow-up prompt.
    pub fn error_lines(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|f| match f.line {
                Some(line) => format!("{}:{line}: {}", f.document, f.message),
                None => format!("{}: {}", f.document, f.message),
            })
            .collect()
    }
}

fn error(document: &str, line: Option<usize>, message: impl Into<String>) -> Finding {
    Finding {
        document: document.to_string(),
        line,
        message: message.into(),
    }
}

/// Checks a spec: every document is present and not empty.
pub fn check(files: &SpecFiles) -> SpecReport {
    let mut report = SpecReport::default();
    for (name, doc) in [
        ("requirements.md", &files.requirements),
        ("design.md", &files.design),
        ("tasks.md", &files.tasks),
    ] {
        match doc {
            None => report.errors.push(error(name, None, "the file is missing")),
            Some((shown, text)) if text.trim().is_empty() => {
                report.errors.push(error(shown, None, "the file is empty"))
            }
            Some(_) => {}
        }
    }
    report
}
