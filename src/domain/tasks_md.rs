//! The `tasks.md` parser and writer: pure functions over the text of a spec's plan.
//!
//! Two dialects are read, because planning agents write both and people edit them by
//! hand: the canonical (Kiro-compatible) form, `- [ ] 1. Title` with nested
//! `  - [ ] 2.1 Sub`, detail bullets and `_Requirements: …_` / `_Depends: …_` lines,
//! and GitHub spec-kit's form, `- [ ] T001 [P] [US1] Title` under `## Phase N` headings.
//! The parser is tolerant on purpose: it never panics and never refuses a document.
//! What it cannot make sense of becomes a [`ParseProblem`], so the spec review can show
//! it to a person instead of the orchestrator silently dropping work.
//!
//! Writing is editing, never re-serialising: [`set_mark`] changes the one status
//! character inside a checkbox and leaves every other byte alone (CRLF, tabs, trailing
//! spaces and all), so the commit that ticks a task shows a one-character diff.
//!
//! Decisions that the corpus of real files forced (see `tests/tasks_md_corpus.rs`):
//! - A flat `N.M` item written at column 0 is a sub-item of item `N` (nesting by key
//!   prefix), because Kiro and cc-sdd write it that way and mean a checklist step.
//! - `- - [x] 5.3 …` is read as the item it plainly is (it renders as a nested
//!   checkbox) and also reported as a problem, so the malformed line gets fixed.
//! - A list item that carries a spec-kit id but no checkbox (`- [P] T001 …`) is not
//!   an item, because it has no status to track or tick; it is reported as a problem.
//! - Bracket tags other than `[P]` and `[USn]` (for example `[TASK]`, `[VERIFY]`) are
//!   not markers: they stay in the title, where they still tell a reader something.
//! - `**Validates: Requirements 1.1, 3.2**` (Kiro's property-test form) links
//!   requirements like `_Requirements: …_` does, so coverage checks see those links.

mod graph;
mod parse;
mod scan;
mod write;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use graph::{GraphError, GraphNode, TaskGraph, check_graph, graph, ready};
pub use write::{set_mark, set_marker};

/// The status of one checkbox item.
///
/// The exact character found in the box is kept separately in
/// [`TaskItem::marker`], because two characters mean the same status (`x`/`X`,
/// `~`/`-`) and writing must be able to restore the one the author used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// `[ ]`: not started.
    Pending,
    /// `[~]` or `[-]`: a session is working on it.
    InProgress,
    /// `[x]` or `[X]`: finished.
    Done,
}

impl Mark {
    /// Reads a checkbox character; `None` for anything that is not a status marker.
    pub fn from_marker(marker: char) -> Option<Mark> {
        match marker {
            ' ' => Some(Mark::Pending),
            '~' | '-' => Some(Mark::InProgress),
            'x' | 'X' => Some(Mark::Done),
            _ => None,
        }
    }

    /// The character written for this status when the document has no style to copy:
    /// `-` for in progress because that is what Kiro writes.
    pub fn default_marker(self) -> char {
        match self {
            Mark::Pending => ' ',
            Mark::InProgress => '-',
            Mark::Done => 'x',
        }
    }
}

/// One checkbox item of a `tasks.md`, at any nesting level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskItem {
    /// The item's id (`"1"`, `"2.1"`, `"T003"`, `"P1.1"`), without a trailing dot.
    /// An item written without an id gets `"L<line>"`, so every item can be addressed,
    /// although such a key moves when lines are inserted above it.
    pub key: String,
    /// The text after the id, with the `(P)`, `[P]` and `[USn]` markers removed.
    pub title: String,
    pub mark: Mark,
    /// The exact character inside the box (`' '`, `x`, `X`, `~` or `-`).
    pub marker: char,
    /// `- [ ]* …`: the item may be skipped without failing the plan.
    pub optional: bool,
    /// `(P)` or `[P]`: runs alongside its predecessor instead of after it.
    pub parallel: bool,
    /// The 1-based line number of the checkbox line.
    pub line: usize,
    /// 0 for a unit of work (one work session); deeper items are that session's
    /// checklist.
    pub depth: usize,
    /// The index in [`TasksDoc::items`] of the item this one belongs to.
    pub parent: Option<usize>,
    /// The item's other lines (detail bullets and prose), trimmed and without their
    /// bullet, excluding the requirement and dependency lines read into fields below.
    pub details: Vec<String>,
    /// Keys named by `_Depends: …_` lines under this item, as written.
    pub depends: Vec<String>,
    /// Requirement ids named by `_Requirements: …_` (or a localized label) under it.
    pub requirements: Vec<String>,
    /// The spec-kit phase heading this item sits under, if any.
    pub phase: Option<String>,
    /// The spec-kit user story (`"US1"`) the item belongs to, if marked.
    pub story: Option<String>,
}

/// Something in the document a person should look at; parsing carries on regardless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseProblem {
    /// The 1-based line the problem is on.
    pub line: usize,
    pub message: String,
}

/// A parsed `tasks.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TasksDoc {
    /// The first `# ` heading, if there is one.
    pub title: Option<String>,
    /// Every checkbox item in document order; parents come before their children.
    pub items: Vec<TaskItem>,
    /// Lines that look wrong (malformed items, duplicate keys, items without a box).
    pub problems: Vec<ParseProblem>,
}

/// Why a write was refused; the text is then left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TasksError {
    #[error("line {line} is outside the document, which has {lines} lines")]
    LineOutOfRange { line: usize, lines: usize },
    #[error("line {line} is not a task checkbox item")]
    NotATask { line: usize },
    #[error("{marker:?} is not a status marker; use one of ' ', 'x', 'X', '~', '-'")]
    InvalidMarker { marker: char },
}

/// Parses a `tasks.md`. It never panics and never fails: anything it cannot read is
/// left out of `items` and, where it looks like an attempt at a task, reported in
/// `problems`.
pub fn parse(text: &str) -> TasksDoc {
    parse::parse_full(text).doc
}

impl TasksDoc {
    /// The units of work: items that belong to no other item.
    pub fn top_level(&self) -> impl Iterator<Item = &TaskItem> {
        self.items.iter().filter(|item| item.parent.is_none())
    }

    /// The direct sub-items of the item at `index`, in document order.
    pub fn children(&self, index: usize) -> impl Iterator<Item = &TaskItem> {
        self.items
            .iter()
            .filter(move |item| item.parent == Some(index))
    }

    /// The first item with this key (a duplicate key is reported as a problem).
    pub fn get(&self, key: &str) -> Option<&TaskItem> {
        self.items.iter().find(|item| item.key == key)
    }

    /// The index in `items` of the item with this key, for use with [`Self::children`].
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.items.iter().position(|item| item.key == key)
    }

    /// The item whose checkbox is on this 1-based line.
    pub fn at_line(&self, line: usize) -> Option<&TaskItem> {
        self.items.iter().find(|item| item.line == line)
    }
}
