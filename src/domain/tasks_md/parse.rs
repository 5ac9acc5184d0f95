//! The document-level pass: walks the lines once, builds the items with their nesting,
//! details and links, and records the byte offset of every status marker so that
//! writing can change exactly that byte.

use std::collections::HashMap;

use super::scan::{self, Checkbox, Label, LineKind};
use super::{Mark, ParseProblem, TaskItem, TasksDoc};

/// A parsed document plus what only the writer needs.
pub(super) struct Parsed {
    pub doc: TasksDoc,
    /// For each item, the byte offset in the text of the character inside its box.
    pub offsets: Vec<usize>,
}

pub(super) fn parse_full(text: &str) -> Parsed {
    let mut parser = Parser::default();
    let skip = frontmatter_lines(text);
    let mut line_start = 0;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let mut start = line_start;
        line_start += raw.len() + 1;
        if number <= skip {
            continue;
        }
        let mut line = raw.strip_suffix('\r').unwrap_or(raw);
        if number == 1
            && let Some(rest) = line.strip_prefix('\u{feff}')
        {
            line = rest;
            start += '\u{feff}'.len_utf8();
        }
        parser.line(line, number, start);
    }
    parser.finish()
}

/// How many leading lines are YAML frontmatter (`---` … `---`), 0 if none. An opening
/// `---` that is never closed is a thematic break, not frontmatter.
fn frontmatter_lines(text: &str) -> usize {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    if lines.next().map(str::trim_end) != Some("---") {
        return 0;
    }
    for (index, line) in lines.enumerate() {
        if matches!(line.trim_end(), "---" | "...") {
            return index + 2;
        }
    }
    0
}

#[derive(Default)]
struct Parser {
    items: Vec<TaskItem>,
    offsets: Vec<usize>,
    has_id: Vec<bool>,
    problems: Vec<ParseProblem>,
    title: Option<String>,
    /// The open items, innermost last, with the column of their bullet.
    stack: Vec<(usize, usize)>,
    /// Whether lines that follow still belong to the open items.
    context: bool,
    /// Whether the previous line belonged to an item, so an unindented text line is a
    /// lazy continuation of it (as in Markdown) rather than prose after the list.
    lazy: bool,
    fence: Option<(u8, usize)>,
    phase: Option<(String, usize)>,
    /// Key to (first index, latest index).
    keys: HashMap<String, (usize, usize)>,
    /// List items without a box that start with a task id: (line, id, inside a phase).
    boxless: Vec<(usize, String, bool)>,
}

impl Parser {
    fn line(&mut self, line: &str, number: usize, start: usize) {
        if let Some((ch, len)) = self.fence {
            if scan::closes_fence(line, ch, len) {
                self.fence = None;
            }
            let text = line.trim();
            if self.context && !text.is_empty() {
                self.detail_raw(text);
            }
            return;
        }
        match scan::classify(line) {
            LineKind::Blank => self.lazy = false,
            LineKind::Heading { level, text } => self.heading(level, text),
            LineKind::Checkbox(checkbox) => self.item(checkbox, number, start),
            LineKind::Bullet { content: "", .. } => {
                // A stray lone `-`: nothing to read, and not worth a problem.
                self.lazy = false;
            }
            LineKind::Bullet { col, content } => {
                if let Some(id) = scan::boxless_task_id(content) {
                    self.boxless
                        .push((number, id.to_owned(), self.phase.is_some()));
                } else if let Some(marker) = scan::unknown_marker(content) {
                    self.problem(
                        number,
                        format!("unknown status marker [{marker}]; use [ ], [~], [-] or [x]"),
                    );
                }
                self.attach(col, content, true);
            }
            LineKind::Text { col, content } => {
                if let Some(fence) = scan::opens_fence(content) {
                    self.fence = Some(fence);
                }
                self.attach(col, content, false);
            }
        }
    }

    fn heading(&mut self, level: usize, text: &str) {
        self.end_context();
        if scan::is_phase_heading(text) {
            self.phase = Some((text.to_owned(), level));
        } else if self
            .phase
            .as_ref()
            .is_some_and(|(_, phase_level)| level <= *phase_level)
        {
            self.phase = None;
        }
        if level == 1 && self.title.is_none() {
            self.title = Some(text.to_owned());
        }
    }

    fn end_context(&mut self) {
        self.stack.clear();
        self.context = false;
        self.lazy = false;
    }

    /// Gives a non-item line to the innermost open item it is indented under.
    fn attach(&mut self, col: usize, content: &str, bullet: bool) {
        if !self.context {
            return;
        }
        if let Some(pos) = self.stack.iter().rposition(|&(indent, _)| indent < col) {
            self.stack.truncate(pos + 1);
        } else if !self.lazy || bullet {
            // Unindented prose after a blank line, or a sibling bullet: the list is over.
            self.end_context();
            return;
        }
        self.lazy = true;
        let Some(&(_, index)) = self.stack.last() else {
            return;
        };
        let item = &mut self.items[index];
        match scan::label(content) {
            Some(Label::Requirements(ids)) => extend_unique(&mut item.requirements, ids),
            Some(Label::Depends(ids)) => extend_unique(&mut item.depends, ids),
            None => item.details.push(content.trim().to_owned()),
        }
    }

    /// A line inside a fenced block of an open item: kept verbatim (trimmed).
    fn detail_raw(&mut self, text: &str) {
        if let Some(&(_, index)) = self.stack.last() {
            self.items[index].details.push(text.to_owned());
        }
    }

    fn item(&mut self, checkbox: Checkbox<'_>, number: usize, start: usize) {
        let Some(mark) = Mark::from_marker(checkbox.marker) else {
            return;
        };
        while self
            .stack
            .last()
            .is_some_and(|&(indent, _)| indent >= checkbox.indent)
        {
            self.stack.pop();
        }
        let mut parent = self.stack.last().map(|&(_, index)| index);
        let head = scan::head(checkbox.rest);
        let key = match head.key {
            Some(key) => key.to_owned(),
            None => format!("L{number}"),
        };
        if parent.is_none()
            && head.key.is_some()
            && let Some(prefix) = scan::numeric_prefix(&key)
            && let Some(&(_, latest)) = self.keys.get(prefix)
        {
            parent = Some(latest);
        }
        let index = self.items.len();
        match self.keys.get_mut(&key) {
            Some((first, latest)) => {
                let first_line = self.items[*first].line;
                *latest = index;
                self.problem(
                    number,
                    format!("duplicate task key {key:?} (first used on line {first_line})"),
                );
            }
            None => {
                self.keys.insert(key.clone(), (index, index));
            }
        }
        if checkbox.double_bullet {
            self.problem(
                number,
                "two list bullets before the checkbox (`- - [ ]`); read as a nested item".into(),
            );
        }
        self.items.push(TaskItem {
            key,
            title: head.title,
            mark,
            marker: checkbox.marker,
            optional: checkbox.optional,
            parallel: head.parallel,
            line: number,
            depth: parent.map_or(0, |p| self.items[p].depth + 1),
            parent,
            details: Vec::new(),
            depends: Vec::new(),
            requirements: Vec::new(),
            phase: self.phase.as_ref().map(|(text, _)| text.clone()),
            story: head.story.map(str::to_owned),
        });
        self.offsets.push(start + checkbox.marker_offset);
        self.has_id.push(head.key.is_some());
        self.stack.push((checkbox.indent, index));
        self.context = true;
        self.lazy = true;
    }

    fn problem(&mut self, line: usize, message: String) {
        self.problems.push(ParseProblem { line, message });
    }

    fn finish(mut self) -> Parsed {
        // A bullet starting with a task id is a forgotten checkbox when the document
        // has no checkboxes at all, or when it sits among a phase's tasks under an id
        // no item has. Elsewhere (`- T015 and T016 can run in parallel`) it is prose.
        let no_items = self.items.is_empty();
        for (line, id, in_phase) in std::mem::take(&mut self.boxless) {
            if no_items || in_phase && !self.keys.contains_key(&id) {
                self.problem(line, format!("task {id} is a list item without a checkbox; write `- [ ] {id} …` so it can be tracked"));
            }
        }
        // In a list whose units of work carry ids, one without an id is probably a
        // checklist that wandered into the plan; its synthesized key is also fragile.
        let any_id = self
            .items
            .iter()
            .zip(&self.has_id)
            .any(|(item, &has_id)| has_id && item.parent.is_none());
        if any_id {
            for (item, &has_id) in self.items.iter().zip(&self.has_id) {
                if !has_id && item.parent.is_none() {
                    self.problems.push(ParseProblem {
                        line: item.line,
                        message: "a top-level item without an id among items with ids; give it one (its key is the line number)".into(),
                    });
                }
            }
        }
        self.problems.sort_by_key(|problem| problem.line);
        Parsed {
            doc: TasksDoc {
                title: self.title,
                items: self.items,
                problems: self.problems,
            },
            offsets: self.offsets,
        }
    }
}

fn extend_unique(into: &mut Vec<String>, ids: Vec<String>) {
    for id in ids {
        if !into.contains(&id) {
            into.push(id);
        }
    }
}
