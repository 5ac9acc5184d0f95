//! The line-by-line reader behind [`super::parse_requirements`].
//!
//! Markdown is read one line at a time with a small state machine rather than a
//! full markdown parser, because the structure that matters (headings, list items,
//! bold labels, explicit ids) is line-shaped, and because a tolerant line reader
//! can keep going through whatever people write. The module documentation of
//! [`super`] describes which lines become requirements and criteria.

use std::collections::HashMap;

use super::{
    Criterion, EarsPattern, Problem, Requirement, RequirementsDoc, RequirementsFormat,
    canonical_id, classify_ears,
};

/// Where a requirement came from; decides the document's format and whether a
/// guessed requirement survives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// A `Requirement N` (or `R1`, `1.`) heading.
    Kiro,
    /// Created by an explicit `N.M` criterion id with no heading of its own.
    Bugfix,
    /// A spec-kit `User Story N` heading.
    UserStory,
    /// A spec-kit `FR-001` / `SC-001` item.
    Labelled,
    /// Guessed from a plain list under a "Requirements" heading; kept only when
    /// nothing else was found.
    Provisional,
}

/// Whether list items inside the open requirement are criteria.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// No "Acceptance Criteria" marker seen yet: items are criteria.
    Implicit,
    /// After an "Acceptance Criteria" marker: items are criteria.
    Criteria,
    /// After some other label or sub-heading ("Why this priority", "Notes"):
    /// items are not criteria.
    Other,
}

/// One line, as far as structure goes.
enum Line<'a> {
    Blank,
    /// Inside a code fence, an HTML comment or front matter.
    Skip,
    Heading {
        level: usize,
        text: &'a str,
    },
    Rule,
    Table,
    Item {
        indent: usize,
        number: Option<u32>,
        content: &'a str,
        whole: &'a str,
    },
    Text {
        indent: usize,
        text: &'a str,
    },
}

/// What the next line may continue.
enum Ctx {
    None,
    Criterion {
        req: usize,
        crit: usize,
        indent: usize,
        absorb_list: bool,
        blank_seen: bool,
    },
    Story {
        req: usize,
    },
}

struct Draft {
    req: Requirement,
    kind: Kind,
}

/// A heading that encloses the current line.
struct Section {
    level: usize,
    requirements: bool,
}

/// A heading recognized as the start of a requirement.
struct HeadingReq {
    id: String,
    source_id: String,
    title: String,
    kind: Kind,
    priority: Option<String>,
}

struct Parser {
    drafts: Vec<Draft>,
    title: Option<String>,
    current: Option<usize>,
    open_level: usize,
    mode: Mode,
    /// The open requirement has seen nothing but its heading yet.
    fresh: bool,
    /// A "User Story" sub-heading was just seen.
    expect_story: bool,
    ctx: Ctx,
    sections: Vec<Section>,
    last_heading: Option<String>,
    /// An ordered list in progress: (indent, first number, items so far - 1).
    ordered: Option<(usize, u32, u32)>,
    /// An "Acceptance Criteria" marker outside any requirement: (line, items under it).
    orphan: Option<(usize, usize)>,
    orphans: Vec<(usize, usize)>,
    provisional_count: usize,
}

pub(super) fn parse(text: &str) -> RequirementsDoc {
    let lines = split_lines(text);
    let mut parser = Parser {
        drafts: Vec::new(),
        title: None,
        current: None,
        open_level: 0,
        mode: Mode::Implicit,
        fresh: false,
        expect_story: false,
        ctx: Ctx::None,
        sections: Vec::new(),
        last_heading: None,
        ordered: None,
        orphan: None,
        orphans: Vec::new(),
        provisional_count: 0,
    };
    let front_matter_end = front_matter_end(&lines);
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    for (index, raw) in lines.iter().enumerate() {
        let number = index + 1;
        let raw = if index == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let skipped = front_matter_end.is_some_and(|end| index <= end);
        let line = if skipped {
            Line::Skip
        } else {
            classify_line(raw, &mut fence, &mut in_comment)
        };
        parser.line(line, number);
    }
    parser.finish()
}

/// Splits on `\n`, `\r\n` and a lone `\r`, so line numbers match what editors show.
fn split_lines(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The index of the line closing a YAML front matter block that opens the document.
fn front_matter_end(lines: &[&str]) -> Option<usize> {
    let first = lines.first()?.trim_start_matches('\u{feff}').trim();
    if first != "---" {
        return None;
    }
    lines
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, l)| matches!(l.trim(), "---" | "..."))
        .map(|(i, _)| i)
}

/// Leading whitespace in columns (a tab advances to the next multiple of 4) and bytes.
fn indentation(raw: &str) -> (usize, usize) {
    let mut columns = 0;
    let mut bytes = 0;
    for c in raw.chars() {
        match c {
            ' ' => columns += 1,
            '\t' => columns += 4 - columns % 4,
            _ => break,
        }
        bytes += 1;
    }
    (columns, bytes)
}

fn classify_line<'a>(
    raw: &'a str,
    fence: &mut Option<(char, usize)>,
    in_comment: &mut bool,
) -> Line<'a> {
    let (indent, offset) = indentation(raw);
    let rest = raw[offset..].trim_end();
    if let Some((ch, len)) = *fence {
        let run = rest.chars().take_while(|c| *c == ch).count();
        if run >= len && rest.chars().skip(run).all(char::is_whitespace) {
            *fence = None;
        }
        return Line::Skip;
    }
    if *in_comment {
        if rest.contains("-->") {
            *in_comment = false;
        }
        return Line::Skip;
    }
    for ch in ['`', '~'] {
        let run = rest.chars().take_while(|c| *c == ch).count();
        if run >= 3 {
            *fence = Some((ch, run));
            return Line::Skip;
        }
    }
    if let Some(after) = rest.strip_prefix("<!--") {
        if !after.contains("-->") {
            *in_comment = true;
        }
        return Line::Skip;
    }
    if rest.is_empty() {
        return Line::Blank;
    }
    if indent < 4 && rest.starts_with('#') {
        let level = rest.chars().take_while(|c| *c == '#').count();
        let after = &rest[level..];
        if level <= 6 && (after.is_empty() || after.starts_with([' ', '\t'])) {
            return Line::Heading {
                level,
                text: after.trim(),
            };
        }
    }
    if is_rule(rest) {
        return Line::Rule;
    }
    if rest.starts_with('|') {
        return Line::Table;
    }
    if let Some((number, content)) = list_marker(rest) {
        return Line::Item {
            indent,
            number,
            content,
            whole: rest,
        };
    }
    Line::Text { indent, text: rest }
}

/// `---`, `***`, `___`, `* * *`: three or more of one marker and nothing else.
fn is_rule(rest: &str) -> bool {
    let Some(marker) = rest.chars().next().filter(|c| matches!(c, '-' | '*' | '_')) else {
        return false;
    };
    let mut count = 0;
    for c in rest.chars() {
        if c == marker {
            count += 1;
        } else if c != ' ' && c != '\t' {
            return false;
        }
    }
    count >= 3
}

/// A list marker (`-`, `*`, `+`, `1.`, `1)`) and the content after it.
fn list_marker(rest: &str) -> Option<(Option<u32>, &str)> {
    let mut chars = rest.chars();
    let first = chars.next()?;
    if matches!(first, '-' | '*' | '+') {
        let after = &rest[1..];
        if after.is_empty() || after.starts_with([' ', '\t']) {
            return Some((None, after.trim()));
        }
        return None;
    }
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let after = &rest[digits..];
    let after = after.strip_prefix(['.', ')'])?;
    if after.is_empty() || after.starts_with([' ', '\t']) {
        let number = rest[..digits].parse().ok()?;
        return Some((Some(number), after.trim()));
    }
    None
}

/// The content without a leading task checkbox (`[ ]`, `[x]`, `[-]`, `[~]`).
fn strip_checkbox(content: &str) -> &str {
    let mut chars = content.chars();
    if chars.next() == Some('[')
        && chars
            .next()
            .is_some_and(|c| matches!(c, ' ' | 'x' | 'X' | '-' | '~'))
        && chars.next() == Some(']')
    {
        let after = chars.as_str();
        if after.is_empty() || after.starts_with([' ', '\t']) {
            return after.trim();
        }
    }
    content
}

/// `s` without `prefix` (given in lower case), compared case-insensitively.
pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let mut chars = s.chars();
    for p in prefix.chars() {
        let c = chars.next()?;
        if c != p && !c.to_lowercase().eq(p.to_lowercase()) {
            return None;
        }
    }
    Some(chars.as_str())
}

/// Words that name a user story in a heading ("User Story 1 - …").
const STORY_WORDS: &[&str] = &[
    "user story",
    "user-story",
    "historia de usuario",
    "historia del usuario",
    "história de usuário",
    "história do usuário",
    "ユーザーストーリー",
    "사용자 스토리",
    "用户故事",
    "用戶故事",
    "câu chuyện người dùng",
];

/// Words that name a requirement in a heading ("Requirement 1", "需求 1").
const REQUIREMENT_WORDS: &[&str] = &[
    "requirement",
    "requisito",
    "requerimiento",
    "exigence",
    "exigência",
    "anforderung",
    "yêu cầu",
    "需求",
    "要件",
    "要求",
    "요구사항",
    "req",
];

/// Id prefixes of spec-kit style labelled items (`FR-001`, `SC-001`, Spanish
/// `RF-001` / `CE-001`, `NFR-001`, `REQ-001`).
const ID_PREFIXES: &[&str] = &["FR", "NFR", "RF", "RNF", "SC", "CE", "REQ"];

/// The number after a requirement word: separators, then 1 to 6 digits.
fn number_after(rest: &str) -> Option<(&str, &str)> {
    let rest = rest.trim_start_matches([' ', '\t', '#', '-', '_', '.', '\u{3000}']);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 6 {
        return None;
    }
    Some((&rest[..digits], &rest[digits..]))
}

/// The title after an id: separators stripped from the front, colons from the end.
fn title_after(rest: &str) -> &str {
    rest.trim_start_matches([
        ' ', '\t', ':', '：', '-', '–', '—', '.', ')', '|', '\u{3000}', '、',
    ])
    .trim_end_matches([':', '：', ' '])
    .trim()
}

/// An id with its leading zeros removed ("001" → "1", "0" stays).
fn trim_zeros(digits: &str) -> String {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Whether an ASCII word ends here (the next character is not a letter).
fn word_ends(rest: &str, word: &str) -> bool {
    !word.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
        || !rest.starts_with(|c: char| c.is_alphabetic())
}

/// Splits "(Priority: P1)" off a user story title.
fn split_priority(title: &str) -> (String, Option<String>) {
    let t = title.trim();
    if let Some(open) = t.rfind(['(', '（']) {
        let inner = t[open..]
            .trim_start_matches(['(', '（'])
            .trim_end_matches([')', '）']);
        if let Some((key, value)) = inner.split_once([':', '：']) {
            let key = key.to_lowercase();
            if ["priori", "優先", "优先", "우선"]
                .iter()
                .any(|w| key.contains(w))
            {
                return (t[..open].trim().to_string(), Some(value.trim().to_string()));
            }
        }
    }
    (t.to_string(), None)
}

/// Recognizes the start of a requirement in a heading (or whole bold line).
/// `numbered_ok` allows `1. Title` headings, which only count under a
/// "Requirements" section.
fn requirement_heading(text: &str, numbered_ok: bool) -> Option<HeadingReq> {
    let t = text.trim();
    let source = |rem: &str| t[..t.len() - rem.len()].trim().to_string();
    for word in STORY_WORDS {
        if let Some(rest) = strip_prefix_ci(t, word) {
            let (digits, rem) = number_after(rest)?;
            let (title, priority) = split_priority(title_after(rem));
            return Some(HeadingReq {
                id: format!("US{}", trim_zeros(digits)),
                source_id: source(rem),
                title: if title.is_empty() { source(rem) } else { title },
                kind: Kind::UserStory,
                priority,
            });
        }
    }
    for word in REQUIREMENT_WORDS {
        if let Some(rest) = strip_prefix_ci(t, word) {
            if !word_ends(rest, word) {
                continue;
            }
            let Some((digits, rem)) = number_after(rest) else {
                continue;
            };
            return Some(kiro_heading(digits, source(rem), title_after(rem)));
        }
    }
    if let Some(rest) = t.strip_prefix('R') {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let rem = &rest[digits..];
        if digits > 0 && digits <= 6 && !rem.starts_with(|c: char| c.is_alphanumeric()) {
            return Some(kiro_heading(&rest[..digits], source(rem), title_after(rem)));
        }
    }
    if let Some((token, rem)) = id_token(t)
        && (rem.is_empty() || rem.starts_with([' ', '\t', ':', '：', '-', '–', '—', '.']))
    {
        let title = title_after(rem);
        return Some(HeadingReq {
            id: token.to_string(),
            source_id: token.to_string(),
            title: if title.is_empty() { token } else { title }.to_string(),
            kind: Kind::Kiro,
            priority: None,
        });
    }
    if numbered_ok {
        let digits = t.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && digits <= 6 {
            let rem = &t[digits..];
            if let Some(after) = rem.strip_prefix(['.', ')', ':'])
                && (after.is_empty() || after.starts_with([' ', '\t']))
            {
                return Some(kiro_heading(&t[..digits], t[..digits].to_string(), after));
            }
        }
    }
    None
}

fn kiro_heading(digits: &str, source_id: String, title: &str) -> HeadingReq {
    let title = title_after(title);
    HeadingReq {
        id: trim_zeros(digits),
        title: if title.is_empty() {
            source_id.clone()
        } else {
            title.to_string()
        },
        source_id,
        kind: Kind::Kiro,
        priority: None,
    }
}

/// A labelled id at the start of `s` (`FR-001`, `SC-001a`, `REQ-AUTH-01`) and the
/// rest of `s` after it.
fn id_token(s: &str) -> Option<(&str, &str)> {
    let letters = s.chars().take_while(char::is_ascii_uppercase).count();
    if !ID_PREFIXES.contains(&&s[..letters]) {
        return None;
    }
    let after = s[letters..].strip_prefix('-')?;
    let len = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .count();
    let token = s[..letters + 1 + len].trim_end_matches('-');
    if !token[letters..].chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((token, &s[token.len()..]))
}

/// A spec-kit labelled item: `**FR-001**: text`, `**FR-001:** text`, `FR-001: text`.
fn labelled_item(content: &str) -> Option<(&str, &str)> {
    let (bold, body) = match content.strip_prefix("**") {
        Some(body) => (true, body),
        None => (false, content),
    };
    let (token, mut rest) = id_token(body)?;
    if bold {
        rest = rest.strip_prefix([':', '：']).unwrap_or(rest);
        rest = rest.strip_prefix("**")?;
    }
    let separated = rest.is_empty()
        || rest.starts_with([':', '：', ' ', '\t', '-', '–', '—'])
        || rest.starts_with(". ");
    if !separated {
        return None;
    }
    let rest = rest
        .trim_start_matches([':', '：', ' ', '\t', '-', '–', '—', '.'])
        .trim();
    Some((token, rest))
}

/// An explicit criterion id `N.M` opening a line (`1.1 WHEN …`, `**2.3** …`):
/// (N, "N.M", rest).
fn dotted_id(content: &str) -> Option<(&str, &str, &str)> {
    let body = content.strip_prefix("**").unwrap_or(content);
    let major = body.chars().take_while(char::is_ascii_digit).count();
    if major == 0 || major > 6 {
        return None;
    }
    let after = body[major..].strip_prefix('.')?;
    let minor = after.chars().take_while(char::is_ascii_digit).count();
    if minor == 0 || minor > 6 {
        return None;
    }
    let id = &body[..major + 1 + minor];
    let mut rest = &after[minor..];
    if rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    rest = rest.strip_prefix(['.', ':', ')']).unwrap_or(rest);
    rest = rest.strip_prefix("**").unwrap_or(rest);
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    if rest.is_empty() {
        return None;
    }
    Some((&body[..major], id, rest))
}

/// A bold label opening a line: `**Label**: rest`, `**Label:** rest`, or a whole
/// bold line `**Label**` (rest empty).
fn bold_label(t: &str) -> Option<(&str, &str)> {
    let marker = if t.starts_with("**") {
        "**"
    } else if t.starts_with("__") {
        "__"
    } else {
        return None;
    };
    let close = t[2..].find(marker)? + 2;
    let raw_label = t[2..close].trim();
    let after = t[close + 2..].trim_start();
    let label_colon = raw_label.ends_with([':', '：']);
    let rest_colon = after.starts_with([':', '：']);
    let label = raw_label.trim_end_matches([':', '：']).trim();
    let rest = after.trim_start_matches([':', '：']).trim();
    if label.is_empty() {
        return None;
    }
    (label_colon || rest_colon || rest.is_empty()).then_some((label, rest))
}

fn contains_any(text: &str, words: &[&str]) -> bool {
    let lower = text.to_lowercase();
    words.iter().any(|w| lower.contains(w))
}

/// "Acceptance Criteria" in the languages of the corpus (but not "Success Criteria").
fn is_criteria_marker(label: &str) -> bool {
    const YES: &[&str] = &[
        "acceptance",
        "criteria",
        "criterion",
        "驗收",
        "验收",
        "受入",
        "受け入れ",
        "tiêu chí",
        "critério",
        "criterio",
        "critère",
        "aceptación",
        "aceitação",
        "인수",
        "수락",
        "수용",
        "akzeptanz",
    ];
    const NO: &[&str] = &[
        "success", "éxito", "exito", "sucesso", "성공", "成功", "exit",
    ];
    contains_any(label, YES) && !contains_any(label, NO)
}

/// "User Story" / "Objective" labels in the languages of the corpus.
fn is_story_label(label: &str) -> bool {
    const WORDS: &[&str] = &[
        "user story",
        "story",
        "故事",
        "ストーリー",
        "historia",
        "história",
        "câu chuyện",
        "스토리",
        "objective",
        "objetivo",
    ];
    contains_any(label, WORDS)
}

/// MoSCoW labels (`**Must**:`), which make a paragraph a criterion.
fn is_moscow_label(label: &str) -> bool {
    const LABELS: &[&str] = &[
        "must",
        "must not",
        "must have",
        "should",
        "should not",
        "should have",
        "could",
        "could have",
        "won't",
        "wont",
        "won't have",
        "will not",
        "shall",
        "shall not",
        "may",
        "will",
        "nice to have",
    ];
    LABELS.contains(&label.to_lowercase().trim())
}

fn ends_with_colon(t: &str) -> bool {
    t.ends_with([':', '：'])
}

impl Parser {
    fn line(&mut self, line: Line<'_>, number: usize) {
        match line {
            Line::Blank => match &mut self.ctx {
                Ctx::Criterion { blank_seen, .. } => *blank_seen = true,
                Ctx::Story { .. } => self.ctx = Ctx::None,
                Ctx::None => {}
            },
            Line::Skip | Line::Rule | Line::Table => {
                self.ctx = Ctx::None;
                self.ordered = None;
            }
            Line::Heading { level, text } => self.heading(level, text, number),
            Line::Item {
                indent,
                number: list_number,
                content,
                whole,
            } => self.item(indent, list_number, content, whole, number),
            Line::Text { indent, text } => self.text(indent, text, number),
        }
    }

    fn push_draft(&mut self, req: Requirement, kind: Kind) -> usize {
        self.drafts.push(Draft { req, kind });
        self.drafts.len() - 1
    }

    fn add_criterion(&mut self, req: usize, id: String, text: &str, line: usize) -> usize {
        let criteria = &mut self.drafts[req].req.criteria;
        criteria.push(Criterion {
            id,
            text: text.trim().to_string(),
            pattern: EarsPattern::NotEars,
            line,
        });
        criteria.len() - 1
    }

    fn next_criterion_id(&self, req: usize, ordinal: Option<u32>) -> String {
        let requirement = &self.drafts[req].req;
        let n = ordinal.map_or(requirement.criteria.len() + 1, |n| n as usize);
        format!("{}.{}", requirement.id, n)
    }

    fn open(&mut self, heading: HeadingReq, level: usize, line: usize) {
        self.close();
        self.orphan_end();
        let kind = heading.kind;
        let index = self.push_draft(
            Requirement {
                id: heading.id,
                source_id: heading.source_id,
                title: heading.title,
                user_story: None,
                priority: heading.priority,
                criteria: Vec::new(),
                line,
            },
            kind,
        );
        self.current = Some(index);
        self.open_level = level;
        self.mode = if kind == Kind::UserStory {
            Mode::Other
        } else {
            Mode::Implicit
        };
        self.fresh = true;
    }

    fn close(&mut self) {
        self.current = None;
        self.mode = Mode::Implicit;
        self.fresh = false;
        self.expect_story = false;
    }

    fn orphan_end(&mut self) {
        if let Some((line, count)) = self.orphan.take()
            && count > 0
        {
            self.orphans.push((line, count));
        }
    }

    /// An "Acceptance Criteria" marker: criteria follow in the open requirement,
    /// or, with none open, whatever follows belongs to nothing.
    fn criteria_marker(&mut self, line: usize) {
        self.fresh = false;
        self.expect_story = false;
        if self.current.is_some() {
            self.mode = Mode::Criteria;
        } else {
            self.orphan_end();
            self.orphan = Some((line, 0));
        }
    }

    fn heading(&mut self, level: usize, raw_text: &str, line: usize) {
        self.ctx = Ctx::None;
        self.ordered = None;
        let text = clean_heading(raw_text);
        if level == 1 && self.title.is_none() && !text.is_empty() {
            self.title = Some(text.to_string());
        }
        while self.sections.last().is_some_and(|s| s.level >= level) {
            self.sections.pop();
        }
        let numbered_ok = level > 1 && self.sections.iter().any(|s| s.requirements);
        if let Some(found) = requirement_heading(text, numbered_ok) {
            self.sections.push(Section {
                level,
                requirements: false,
            });
            self.open(found, level, line);
            return;
        }
        let marker = is_criteria_marker(text);
        self.sections.push(Section {
            level,
            requirements: level > 1 && !marker && is_requirements_section(text),
        });
        if marker {
            // A marker shallower than a real requirement heading ("## Acceptance
            // Criteria" after "### Requirement 2") starts a section of its own.
            if self.current.is_some() && self.open_level <= 6 && level < self.open_level {
                self.close();
            }
            self.criteria_marker(line);
            return;
        }
        if self.current.is_some() && level > self.open_level && is_story_label(text) {
            self.expect_story = true;
            return;
        }
        self.orphan_end();
        if self.current.is_some() {
            if level <= self.open_level {
                self.close();
            } else {
                self.mode = Mode::Other;
                self.fresh = false;
            }
        }
        self.last_heading = Some(text.to_string());
    }

    /// Appends a nested list item to the criterion being read, if it continues one.
    fn continue_item(&mut self, indent: usize, whole: &str) -> bool {
        if let Ctx::Criterion {
            req,
            crit,
            indent: item_indent,
            absorb_list,
            blank_seen,
        } = &mut self.ctx
            && (*absorb_list || indent > *item_indent)
        {
            *blank_seen = false;
            let text = &mut self.drafts[*req].req.criteria[*crit].text;
            text.push('\n');
            text.push_str(whole.trim());
            return true;
        }
        false
    }

    /// Appends a wrapped line to the criterion or user story being read.
    fn continue_text(&mut self, indent: usize, t: &str) -> bool {
        match &mut self.ctx {
            Ctx::Criterion {
                req,
                crit,
                indent: item_indent,
                absorb_list,
                blank_seen,
            } => {
                let lazy = !*blank_seen;
                let indented = indent > *item_indent && indent >= 2;
                if !(lazy || indented) || is_structural(t) {
                    return false;
                }
                let text = &mut self.drafts[*req].req.criteria[*crit].text;
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(t.trim());
                *absorb_list = ends_with_colon(t);
                *blank_seen = false;
                true
            }
            Ctx::Story { req } => {
                if is_structural(t) {
                    return false;
                }
                let story = self.drafts[*req]
                    .req
                    .user_story
                    .get_or_insert_with(String::new);
                if !story.is_empty() {
                    story.push(' ');
                }
                story.push_str(t.trim());
                true
            }
            Ctx::None => false,
        }
    }

    /// The number a renderer would show for an ordered item (markdown renumbers
    /// `1. 1. 1.` as 1, 2, 3), or `None` for a bullet.
    fn ordinal(&mut self, indent: usize, number: Option<u32>) -> Option<u32> {
        let Some(number) = number else {
            if self.ordered.is_some_and(|(i, _, _)| i == indent) {
                self.ordered = None;
            }
            return None;
        };
        match self.ordered {
            Some((i, start, seen)) if i == indent => {
                let seen = seen.saturating_add(1);
                self.ordered = Some((i, start, seen));
                Some(start.saturating_add(seen))
            }
            _ => {
                self.ordered = Some((indent, number, 0));
                Some(number)
            }
        }
    }

    fn set_story(&mut self, req: usize, text: &str) {
        self.drafts[req].req.user_story = Some(text.trim().to_string());
        self.ctx = Ctx::Story { req };
        self.expect_story = false;
        self.fresh = false;
    }

    fn item(
        &mut self,
        indent: usize,
        number: Option<u32>,
        content: &str,
        whole: &str,
        line: usize,
    ) {
        if self.continue_item(indent, whole) {
            return;
        }
        self.ctx = Ctx::None;
        let ordinal = self.ordinal(indent, number);
        let content = strip_checkbox(content);
        if content.is_empty() {
            return;
        }
        if let Some((token, rest)) = labelled_item(content) {
            self.standalone(token, rest, line, indent, Kind::Labelled);
            return;
        }
        if let Some((major, id, rest)) = dotted_id(content)
            && self.dotted_ok(rest)
        {
            self.explicit(major, id, rest, line, indent);
            return;
        }
        if let Some(req) = self.current {
            if let Some((label, rest)) = bold_label(content) {
                if is_story_label(label) && self.drafts[req].req.user_story.is_none() {
                    self.set_story(req, rest);
                    return;
                }
                if is_criteria_marker(label) && rest.is_empty() {
                    self.criteria_marker(line);
                    return;
                }
            }
            self.fresh = false;
            if self.mode == Mode::Other {
                return;
            }
            let id = self.next_criterion_id(req, ordinal);
            let crit = self.add_criterion(req, id, content, line);
            self.ctx = Ctx::Criterion {
                req,
                crit,
                indent,
                absorb_list: false,
                blank_seen: false,
            };
            return;
        }
        if let Some((_, count)) = &mut self.orphan {
            *count += 1;
            return;
        }
        if indent < 2 && self.sections.last().is_some_and(|s| s.requirements) {
            self.provisional_count += 1;
            let id = ordinal.map_or(self.provisional_count.to_string(), |n| n.to_string());
            self.standalone(&id, content, line, indent, Kind::Provisional);
        }
    }

    fn text(&mut self, indent: usize, t: &str, line: usize) {
        if self.continue_text(indent, t) {
            return;
        }
        self.ctx = Ctx::None;
        self.ordered = None;
        if let Some((token, rest)) = labelled_item(t) {
            self.standalone(token, rest, line, indent, Kind::Labelled);
            return;
        }
        if let Some((major, id, rest)) = dotted_id(t)
            && self.dotted_ok(rest)
        {
            self.explicit(major, id, rest, line, indent);
            return;
        }
        if let Some((label, rest)) = bold_label(t) {
            if let Some(mut found) = requirement_heading(label, false) {
                if !rest.is_empty() {
                    found.title = rest.to_string();
                }
                self.open(found, 7, line);
                return;
            }
            self.fresh = false;
            if is_story_label(label) {
                if let Some(req) = self.current {
                    self.set_story(req, rest);
                }
                return;
            }
            if is_criteria_marker(label) && rest.is_empty() {
                self.criteria_marker(line);
                return;
            }
            if is_moscow_label(label) || is_criteria_marker(label) {
                if let Some(req) = self.current {
                    let id = self.next_criterion_id(req, None);
                    let crit = self.add_criterion(req, id, t, line);
                    self.ctx = Ctx::Criterion {
                        req,
                        crit,
                        indent,
                        absorb_list: ends_with_colon(t),
                        blank_seen: false,
                    };
                }
                return;
            }
            if self.current.is_some() {
                self.mode = Mode::Other;
            }
            return;
        }
        let plain = t.trim_end_matches([':', '：']).trim();
        if ends_with_colon(t) && plain.split_whitespace().count() <= 5 && is_criteria_marker(plain)
        {
            self.criteria_marker(line);
            return;
        }
        let Some(req) = self.current else {
            return;
        };
        let draft = &self.drafts[req];
        let lower = t.to_lowercase();
        let as_a = lower.starts_with("as a ") || lower.starts_with("as an ");
        let story_paragraph = self.expect_story
            || (self.fresh && draft.kind == Kind::UserStory)
            || (as_a && draft.req.user_story.is_none());
        if story_paragraph {
            self.set_story(req, t);
            return;
        }
        self.fresh = false;
        if self.mode == Mode::Implicit && ends_with_colon(t) {
            self.mode = Mode::Other;
        }
    }

    /// Whether an `N.M` line is a criterion id: inside a requirement always,
    /// elsewhere only when the sentence opens like a criterion (so that prose such
    /// as "2.5 million users" is left alone).
    fn dotted_ok(&self, rest: &str) -> bool {
        if self.current.is_some() {
            return true;
        }
        let first: String = rest
            .trim_start_matches(['*', '_'])
            .chars()
            .take_while(|c| c.is_alphabetic())
            .flat_map(char::to_lowercase)
            .collect();
        matches!(
            first.as_str(),
            "when" | "while" | "if" | "where" | "the" | "given" | "after"
        )
    }

    /// A criterion with an explicit `N.M` id, attached to requirement `N`.
    fn explicit(&mut self, major: &str, id: &str, rest: &str, line: usize, indent: usize) {
        let major_id = trim_zeros(major);
        let req = self
            .current
            .filter(|&r| canonical_id(&self.drafts[r].req.id) == major_id)
            .or_else(|| {
                self.drafts
                    .iter()
                    .position(|d| d.kind != Kind::Provisional && d.req.id == major_id)
            });
        let req = match req {
            Some(req) => req,
            None => {
                let title = self
                    .last_heading
                    .clone()
                    .unwrap_or_else(|| format!("Requirement {major_id}"));
                self.push_draft(
                    Requirement {
                        id: major_id,
                        source_id: major.to_string(),
                        title,
                        user_story: None,
                        priority: None,
                        criteria: Vec::new(),
                        line,
                    },
                    Kind::Bugfix,
                )
            }
        };
        let crit = self.add_criterion(req, id.to_string(), rest, line);
        self.ctx = Ctx::Criterion {
            req,
            crit,
            indent,
            absorb_list: false,
            blank_seen: false,
        };
    }

    /// A requirement that is its own single criterion (spec-kit `FR-001`, or a
    /// guessed list item).
    fn standalone(&mut self, token: &str, rest: &str, line: usize, indent: usize, kind: Kind) {
        let id = match token.strip_prefix("REQ-") {
            Some(digits) if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) => {
                trim_zeros(digits)
            }
            _ => token.to_string(),
        };
        let req = self.push_draft(
            Requirement {
                id: id.clone(),
                source_id: token.to_string(),
                title: String::new(),
                user_story: None,
                priority: None,
                criteria: Vec::new(),
                line,
            },
            kind,
        );
        let crit = self.add_criterion(req, id, rest, line);
        self.ctx = Ctx::Criterion {
            req,
            crit,
            indent,
            absorb_list: false,
            blank_seen: false,
        };
    }

    fn finish(mut self) -> RequirementsDoc {
        self.orphan_end();
        let has_real = self.drafts.iter().any(|d| d.kind != Kind::Provisional);
        let drafts: Vec<Draft> = self
            .drafts
            .into_iter()
            .filter(|d| !has_real || d.kind != Kind::Provisional)
            .collect();
        let kiro = drafts
            .iter()
            .filter(|d| matches!(d.kind, Kind::Kiro | Kind::Bugfix))
            .count();
        let speckit = drafts
            .iter()
            .filter(|d| matches!(d.kind, Kind::UserStory | Kind::Labelled))
            .count();
        let format = if speckit > 0 && speckit >= kiro {
            RequirementsFormat::SpecKit
        } else if kiro > 0 {
            RequirementsFormat::Kiro
        } else {
            RequirementsFormat::Unknown
        };
        let mut problems = Vec::new();
        let mut requirements = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let mut req = draft.req;
            for criterion in &mut req.criteria {
                criterion.pattern = classify_ears(&criterion.text);
            }
            if req.title.is_empty() {
                req.title = req
                    .criteria
                    .first()
                    .map_or_else(|| req.source_id.clone(), |c| c.text.clone());
            }
            if req
                .user_story
                .as_deref()
                .is_some_and(|s| s.trim().is_empty())
            {
                req.user_story = None;
            }
            if req.criteria.is_empty() {
                problems.push(Problem {
                    line: req.line,
                    message: format!(
                        "requirement {} ({}) has no acceptance criteria",
                        req.id, req.source_id
                    ),
                });
            }
            requirements.push(req);
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for req in &requirements {
            match seen.get(&canonical_id(&req.id)) {
                Some(first) => problems.push(Problem {
                    line: req.line,
                    message: format!(
                        "duplicate requirement id {} (first at line {first})",
                        req.id
                    ),
                }),
                None => {
                    seen.insert(canonical_id(&req.id), req.line);
                }
            }
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for criterion in requirements.iter().flat_map(|r| r.criteria.iter()) {
            match seen.get(&canonical_id(&criterion.id)) {
                Some(first) => problems.push(Problem {
                    line: criterion.line,
                    message: format!(
                        "duplicate criterion id {} (first at line {first})",
                        criterion.id
                    ),
                }),
                None => {
                    seen.insert(canonical_id(&criterion.id), criterion.line);
                }
            }
        }
        for (line, count) in self.orphans {
            problems.push(Problem {
                line,
                message: format!(
                    "{count} acceptance criteria under this heading belong to no requirement and were not read"
                ),
            });
        }
        if requirements.is_empty() {
            problems.push(Problem {
                line: 1,
                message: "no requirements found (expected `Requirement N` headings, \
                          `FR-001` items or `User Story N` headings)"
                    .to_string(),
            });
        }
        problems.sort_by_key(|p| p.line);
        RequirementsDoc {
            format,
            title: self.title,
            requirements,
            problems,
        }
    }
}

/// Heading text without closing hashes or bold around the whole of it.
fn clean_heading(text: &str) -> &str {
    let t = text.trim();
    let stripped = t.trim_end_matches('#');
    let t = if stripped.len() < t.len() && (stripped.is_empty() || stripped.ends_with([' ', '\t']))
    {
        stripped.trim_end()
    } else {
        t
    };
    t.strip_prefix("**")
        .and_then(|x| x.strip_suffix("**"))
        .filter(|x| !x.contains("**"))
        .unwrap_or(t)
        .trim()
}

/// A heading naming a requirements section ("Requirements", "Functional
/// Requirements", "需求", "要件"), under which `1. Title` headings and, as a last
/// resort, plain list items are requirements.
fn is_requirements_section(text: &str) -> bool {
    contains_any(text, &REQUIREMENT_WORDS[..REQUIREMENT_WORDS.len() - 1])
}

/// Lines that start something new and so never continue a criterion.
fn is_structural(t: &str) -> bool {
    labelled_item(t).is_some() || dotted_id(t).is_some() || bold_label(t).is_some()
}
