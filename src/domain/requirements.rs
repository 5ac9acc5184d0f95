//! The requirements document parser and EARS classifier.
//!
//! A spec's requirements arrive in several dialects, and the review, the coverage
//! check ("every requirement covered by a task") and the task links all need the
//! same view of them: a list of [`Requirement`]s, each with [`Criterion`]s that
//! tasks can link to by id. This module reads every dialect into that one shape and
//! never fails: whatever it cannot read becomes a [`Problem`], so a reviewer sees
//! it instead of the planning round crashing.
//!
//! # Kiro (`requirements.md`, `bugfix.md`)
//!
//! - A requirement starts at a heading of any level (or a whole bold line) such as
//!   `### Requirement 1: Title`, `## Requirement 1`, `**Requirement 1**`,
//!   `### R1: Title`, `### REQ-1 Title`, localized words (`需求 1`, `要件 1`,
//!   `Requisito 1`, `Yêu cầu 1`), or `### 1. Title` under a "Requirements" section.
//!   Its id is normalized to the number (`"1"`); [`Requirement::source_id`] keeps
//!   what was written (`"R1"`). It ends at the next heading of the same or a higher
//!   level, except the "Acceptance Criteria" / "User Story" sub-headings.
//! - `**User Story:** …` (or `**Objective:** …`, `**用戶故事：** …`, a paragraph
//!   starting "As a …") is the user story.
//! - Criteria are the list items (numbered or bulleted, checkboxes stripped) after
//!   an "Acceptance Criteria" heading or bold label, or — when the requirement has
//!   no such marker — its list items and MoSCoW paragraphs (`**Must**: …`,
//!   `**Should**: …`, `**Acceptance**: …`). A bold label or a line ending in `:` that
//!   introduces something else ("Implementation constraints:") stops collecting.
//!   Criterion ids are `<requirement>.<n>`, as `_Requirements: 1.3_` links them:
//!   `n` is the list number as markdown renders it (the written number for the
//!   usual `1. 2. 3.`, while `1. 1. 1.` counts 1, 2, 3), or the position for bullets.
//! - Lines that start with an explicit id `N.M` (Kiro's `bugfix.md`:
//!   `1.1 WHEN … THEN …` under "Current Behavior", `2.1` under "Expected Behavior")
//!   are criteria of requirement `N`, which is created with the title of the heading
//!   above it when no `Requirement N` heading exists.
//!
//! # spec-kit (`spec.md`)
//!
//! - Each functional requirement `- **FR-001**: System MUST …` (also `RF-`, `NFR-`,
//!   `REQ-`, and success criteria `SC-` / `CE-`, which tasks cite too) is a
//!   requirement with that id whose single criterion carries the same id and the
//!   requirement's own text. Its title is that text as well.
//! - Each user story `### User Story 1 - Title (Priority: P1)` (or `Historia de
//!   Usuario 1 … (Prioridad: P1)`) is a requirement `US1` whose user story is the
//!   paragraph under the heading, whose [`Requirement::priority`] is `P1`, and whose
//!   criteria are the numbered "Acceptance Scenarios" `US1.1`, `US1.2`, … — Gherkin
//!   Given/When/Then, which the classifier reports as [`EarsPattern::Gherkin`].
//!
//! # Anything else
//!
//! When none of the above finds a requirement, the top-level list items under a
//! heading that says "Requirements" become requirements (numbered by their list
//! number, or by position), each with itself as its single criterion, and the
//! document's format is [`RequirementsFormat::Unknown`].

mod ears;
mod parse;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The EARS template a criterion follows, or why it follows none.
///
/// Serialized in snake_case (`event_driven`, `not_ears`, …) for the API and the
/// review report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EarsPattern {
    /// "The <system> shall <response>": always true, no precondition.
    Ubiquitous,
    /// "When <trigger>, the <system> shall …", including Kiro's
    /// "WHEN … THEN the system SHALL …" and "WHEN … THEN I SHALL …".
    EventDriven,
    /// "While <state>, the <system> shall …".
    StateDriven,
    /// "If <condition>, then the <system> shall …".
    UnwantedBehaviour,
    /// "Where <feature is included>, the <system> shall …".
    OptionalFeature,
    /// Two or more of the above combined, e.g. "While …, when …, the system shall …".
    Complex,
    /// A Given/When/Then scenario. It is a test description, not an EARS
    /// requirement; it has its own variant so that a review can tell spec-kit's
    /// acceptance scenarios (expected) from criteria that failed to be EARS.
    Gherkin,
    /// Fits no EARS template: no "shall" (MoSCoW "Must", spec-kit "System MUST",
    /// `WHEN … THEN システムは…` without SHALL), or a precondition EARS does not
    /// have ("AFTER …, the system SHALL …").
    NotEars,
}

impl EarsPattern {
    /// Every pattern, in declaration order, for reports that list counts per pattern.
    pub const ALL: [EarsPattern; 8] = [
        EarsPattern::Ubiquitous,
        EarsPattern::EventDriven,
        EarsPattern::StateDriven,
        EarsPattern::UnwantedBehaviour,
        EarsPattern::OptionalFeature,
        EarsPattern::Complex,
        EarsPattern::Gherkin,
        EarsPattern::NotEars,
    ];

    /// Whether the criterion is in one of the EARS forms (Gherkin and NotEars are not).
    pub fn is_ears(self) -> bool {
        !matches!(self, EarsPattern::Gherkin | EarsPattern::NotEars)
    }

    /// The serialized name (`"event_driven"`), for messages and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            EarsPattern::Ubiquitous => "ubiquitous",
            EarsPattern::EventDriven => "event_driven",
            EarsPattern::StateDriven => "state_driven",
            EarsPattern::UnwantedBehaviour => "unwanted_behaviour",
            EarsPattern::OptionalFeature => "optional_feature",
            EarsPattern::Complex => "complex",
            EarsPattern::Gherkin => "gherkin",
            EarsPattern::NotEars => "not_ears",
        }
    }
}

impl std::fmt::Display for EarsPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies one acceptance criterion by its EARS keywords (case-insensitive; the
/// rest of the sentence may be in any language). See [`EarsPattern`] for the
/// patterns; the full procedure is documented in `requirements/ears.rs`.
///
/// - Gherkin `Given … When … Then …` is [`EarsPattern::Gherkin`], never EARS.
/// - No "shall" means [`EarsPattern::NotEars`]. This covers MoSCoW "Must"/"Should"
///   and spec-kit's "The system MUST …": "must" is not an EARS keyword, and
///   accepting it would make every spec-kit FR pass the EARS check silently; a
///   review shows them as warnings instead. It also covers a localized response
///   without "SHALL" (`WHEN … THEN システムは…`).
/// - `When`/`While`/`If`/`Where` opening a clause before "shall" decide the pattern;
///   two different ones make it [`EarsPattern::Complex`].
/// - "The X shall …" with no precondition is [`EarsPattern::Ubiquitous`]; a
///   precondition EARS lacks ("AFTER …, THE X SHALL") is [`EarsPattern::NotEars`].
pub fn classify_ears(sentence: &str) -> EarsPattern {
    ears::classify(sentence)
}

/// One acceptance criterion: what a task links to and what the EARS check reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Criterion {
    /// `"1.3"` (Kiro), `"US1.2"` (spec-kit scenario), `"FR-001"` (spec-kit FR).
    pub id: String,
    /// The criterion as written, without its list marker or checkbox; wrapped lines
    /// are joined with spaces and nested list items with newlines.
    pub text: String,
    /// The EARS pattern of `text`, so that the review can flag criteria in no form.
    pub pattern: EarsPattern,
    /// 1-based line of the criterion's first line, for anchoring review comments.
    pub line: usize,
}

/// One requirement with its acceptance criteria.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Requirement {
    /// The normalized id tasks link to: `"1"` for "Requirement 1" / "R1" / "REQ-1",
    /// `"US1"` for "User Story 1", `"FR-001"` for a spec-kit FR.
    pub id: String,
    /// The id as written in the document (`"Requirement 1"`, `"R1"`, `"FR-001"`),
    /// so a report can quote the author's own words.
    pub source_id: String,
    /// The heading's title ("User Login"); the heading itself ("Requirement 1")
    /// when it has none; the text itself for a spec-kit `FR-001` item.
    pub title: String,
    /// The "As a …, I want …, so that …" paragraph, when the document gives one.
    pub user_story: Option<String>,
    /// A spec-kit user story's priority (`"P1"`), when one is given.
    pub priority: Option<String>,
    /// The acceptance criteria in document order; empty is reported as a problem.
    pub criteria: Vec<Criterion>,
    /// 1-based line where the requirement starts.
    pub line: usize,
}

/// Which convention a document follows, as far as its structure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequirementsFormat {
    /// Numbered requirements with acceptance criteria (`requirements.md`, `bugfix.md`).
    Kiro,
    /// spec-kit's `spec.md`: user stories with scenarios, `FR-`/`SC-` items.
    SpecKit,
    /// Neither convention was recognized; requirements, if any, were guessed from
    /// a "Requirements" list.
    Unknown,
}

/// Something in the document a reviewer should know about: a requirement without
/// criteria, a duplicate id, criteria outside any requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// 1-based line the problem is anchored to.
    pub line: usize,
    /// A sentence a reviewer can act on, naming the ids involved.
    pub message: String,
}

/// A parsed requirements document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequirementsDoc {
    pub format: RequirementsFormat,
    /// The first level-1 heading, if the document has one.
    pub title: Option<String>,
    /// The requirements in document order.
    pub requirements: Vec<Requirement>,
    /// What could not be read cleanly, in line order; parsing itself never fails.
    pub problems: Vec<Problem>,
}

/// Parses a requirements document (Kiro `requirements.md` / `bugfix.md`, spec-kit
/// `spec.md`, or anything close). Never panics and never fails: what it cannot
/// read is reported in [`RequirementsDoc::problems`]. CRLF, lone CR, tabs, a BOM,
/// YAML front matter, HTML comments and fenced code blocks are all tolerated.
pub fn parse_requirements(text: &str) -> RequirementsDoc {
    parse::parse(text)
}

impl RequirementsDoc {
    /// Every id a task may link to: requirement ids and criterion ids ("1", "1.2",
    /// "FR-001", "US1.2"), in document order, without duplicates.
    pub fn linkable_ids(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for requirement in &self.requirements {
            for id in
                std::iter::once(&requirement.id).chain(requirement.criteria.iter().map(|c| &c.id))
            {
                if seen.insert(id.as_str()) {
                    out.push(id.clone());
                }
            }
        }
        out
    }

    /// Every criterion of every requirement, in document order.
    pub fn criteria(&self) -> impl Iterator<Item = &Criterion> {
        self.requirements.iter().flat_map(|r| r.criteria.iter())
    }

    /// Whether a task's `_Requirements:_` entry names something in this document.
    ///
    /// Accepted: a criterion or requirement id ("1.2", "1", "FR-001", "US1.2"),
    /// compared case-insensitively and ignoring leading zeros and dashes ("fr-1" is
    /// "FR-001"); the id as written ("R1"); a prefix word ("Requirement 1.2",
    /// "Req 1.2", "R1.2", "REQ-1.2", "AC 1.2", "需求 1.2"); trailing notes
    /// ("1.2 (partial)"); markdown around it (`` `1.2` ``, `_1.2_`); and a range
    /// ("1.1-1.3") when both ends resolve. Prose ("all backend requirements") does
    /// not resolve.
    pub fn resolves(&self, link: &str) -> bool {
        self.lookup(link).is_some()
    }

    /// The requirement a link belongs to ("1.2" → requirement "1", "US1.2" →
    /// "US1", "FR-001" → "FR-001", "1" → "1"), read as [`RequirementsDoc::resolves`]
    /// reads it; for a range, the requirement of its first end.
    pub fn requirement_of(&self, link: &str) -> Option<&Requirement> {
        self.lookup(link).map(|i| &self.requirements[i])
    }

    /// The criterion a link names exactly, if it names a criterion.
    pub fn criterion(&self, link: &str) -> Option<&Criterion> {
        link_candidates(link)
            .into_iter()
            .find_map(|key| self.criteria().find(|c| canonical_id(&c.id) == key))
    }

    fn lookup(&self, link: &str) -> Option<usize> {
        for key in link_candidates(link) {
            if let Some(found) = self.lookup_key(&key) {
                return Some(found);
            }
        }
        let (start, end) = split_range(link)?;
        let first = link_candidates(start)
            .into_iter()
            .find_map(|k| self.lookup_key(&k))?;
        link_candidates(end)
            .into_iter()
            .find_map(|k| self.lookup_key(&k))?;
        Some(first)
    }

    /// Finds the requirement whose criterion, id or written id has this canonical key.
    fn lookup_key(&self, key: &str) -> Option<usize> {
        if key.is_empty() {
            return None;
        }
        self.requirements
            .iter()
            .position(|r| r.criteria.iter().any(|c| canonical_id(&c.id) == key))
            .or_else(|| {
                self.requirements
                    .iter()
                    .position(|r| canonical_id(&r.id) == key || canonical_id(&r.source_id) == key)
            })
    }
}

/// The form ids are compared in: upper case, letters, digits and dots only, with
/// leading zeros dropped from every number, so "FR-001", "fr-1" and "FR1" agree.
fn canonical_id(id: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    let mut separated = false;
    let flush = |digits: &mut String, out: &mut String| {
        if !digits.is_empty() {
            let trimmed = digits.trim_start_matches('0');
            out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
            digits.clear();
        }
    };
    for c in id.chars() {
        if c.is_ascii_digit() {
            // "1-2" must not become "12": a separator between two numbers stays.
            if digits.is_empty() && separated && out.ends_with(|p: char| p.is_ascii_digit()) {
                out.push('-');
            }
            separated = false;
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        if c.is_alphanumeric() || c == '.' {
            out.extend(c.to_uppercase());
            separated = false;
        } else {
            separated = true;
        }
    }
    flush(&mut digits, &mut out);
    out.trim_matches('.').to_string()
}

/// Words a link may start with before the id itself ("Requirement 1.2").
const LINK_PREFIXES: &[&str] = &[
    "requirements",
    "requirement",
    "reqs",
    "req",
    "criteria",
    "criterion",
    "ac",
    "r",
    "需求",
    "要件",
    "要求",
    "요구사항",
];

/// The canonical keys a link could mean, most literal first.
fn link_candidates(link: &str) -> Vec<String> {
    let cleaned = clean_link(link);
    let mut keys = Vec::new();
    let mut push = |s: &str| {
        let token = first_token(s);
        let key = canonical_id(token);
        if !key.is_empty() && !keys.contains(&key) {
            keys.push(key);
        }
    };
    push(cleaned);
    for prefix in LINK_PREFIXES {
        if let Some(rest) = parse::strip_prefix_ci(cleaned, prefix) {
            let starts_ok = rest.chars().next().is_some_and(|c| {
                c.is_ascii_digit() || matches!(c, ' ' | '-' | '_' | '#' | ':' | '.' | '\u{3000}')
            });
            if starts_ok {
                let rest = rest.trim_start_matches([' ', '-', '_', '#', ':', '.', '\u{3000}']);
                if rest.starts_with(|c: char| c.is_ascii_digit()) {
                    push(rest);
                }
            }
        }
    }
    keys
}

/// The link without surrounding markdown, quotes and punctuation.
fn clean_link(link: &str) -> &str {
    link.trim().trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '_' | '*' | '`' | '[' | ']' | '"' | '\'' | ',' | ';' | '.' | ':' | '、' | '，'
            )
    })
}

/// The id part of a link: up to whitespace, an opening parenthesis or a comma.
fn first_token(s: &str) -> &str {
    let end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '(' | '（' | ',' | '，' | '、' | ';'))
        .unwrap_or(s.len());
    s[..end].trim_end_matches(['.', ':', '_', '*', '`'])
}

/// Splits "1.1-1.3" (also `–`, `—`, `~`, `〜`, " to ") into its two ends when both
/// ends start with a digit, so that "FR-001" is never mistaken for a range.
fn split_range(link: &str) -> Option<(&str, &str)> {
    let cleaned = clean_link(link);
    let token_end = cleaned.find(['(', '（']).unwrap_or(cleaned.len());
    let cleaned = cleaned[..token_end].trim();
    for sep in ["-", "–", "—", "~", "〜", " to "] {
        if let Some((a, b)) = cleaned.split_once(sep) {
            let (a, b) = (a.trim(), b.trim());
            let digit_led = |s: &str| s.starts_with(|c: char| c.is_ascii_digit());
            if digit_led(a) && digit_led(b) {
                return Some((a, b));
            }
        }
    }
    None
}
