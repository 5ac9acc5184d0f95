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

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Finding {
    /// The document it is about, e.g. `tasks.md`.
    pub document: String,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SpecReport {
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl SpecReport {
    /// The report for a person: errors, then warnings.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for (title, findings) in [("errors", &self.errors), ("warnings", &self.warnings)] {
            out.push_str(&format!("{title}: {}\n", findings.len()));
            for f in findings {
                match f.line {
                    Some(l) => out.push_str(&format!("  {}:{l}: {}\n", f.document, f.message)),
                    None => out.push_str(&format!("  {}: {}\n", f.document, f.message)),
                }
            }
        }
        out
    }

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
            None if require_all => report.errors.push(error(name, None, "the file is missing")),
            None => {}
            Some((shown, text)) if text.trim().is_empty() => {
                report.errors.push(error(shown, None, "the file is empty"))
            }
            Some(_) => {}
        }
    }
    report
}
