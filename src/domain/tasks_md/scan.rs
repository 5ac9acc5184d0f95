//! Line-level recognisers for `tasks.md`: headings, list bullets, checkboxes, task ids,
//! `_Label: list_` lines and phase headings.
//!
//! Every function looks at one line and only ever slices at positions of ASCII bytes it
//! has just inspected, which are always UTF-8 boundaries, so no input can make them
//! panic. Hand-written byte scanning keeps the parser fast without a regex engine.

/// What one line (without its line ending) is, as far as tasks are concerned.
pub(super) enum LineKind<'a> {
    Blank,
    Heading {
        level: usize,
        text: &'a str,
    },
    Checkbox(Checkbox<'a>),
    /// A list item without a checkbox; `content` is empty for a lone bullet.
    Bullet {
        col: usize,
        content: &'a str,
    },
    /// Any other line: prose, a fence, a table row.
    Text {
        col: usize,
        content: &'a str,
    },
}

/// A checkbox list item on one line.
pub(super) struct Checkbox<'a> {
    /// The column of the bullet that owns the box (the inner one for `- - [x]`), which
    /// decides nesting.
    pub indent: usize,
    /// The byte offset, within the line, of the status character inside the box.
    pub marker_offset: usize,
    pub marker: char,
    /// `]*`: the optional-item star right after the box.
    pub optional: bool,
    /// The text after the box (and after the star).
    pub rest: &'a str,
    /// `- - [x] …`: two bullets before the box, which is malformed.
    pub double_bullet: bool,
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The column reached after `bytes`, starting at `col`; a tab moves to the next
/// multiple of four, as in CommonMark.
fn advance(mut col: usize, bytes: &[u8]) -> usize {
    for &b in bytes {
        col = if b == b'\t' { col / 4 * 4 + 4 } else { col + 1 };
    }
    col
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// The length of a list bullet starting at `i` (`-`, `*`, `+`, `1.` or `1)`).
fn bullet_len(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'-' | b'*' | b'+' => Some(1),
        d if d.is_ascii_digit() => {
            let mut j = i;
            while j < b.len() && j - i < 9 && b[j].is_ascii_digit() {
                j += 1;
            }
            matches!(b.get(j), Some(b'.' | b')')).then_some(j + 1 - i)
        }
        _ => None,
    }
}

/// Whether `[c]` with a status character starts at `i` (and is not a link `[x](…)`).
fn is_box(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b'[')
        && matches!(b.get(i + 1), Some(b' ' | b'x' | b'X' | b'~' | b'-'))
        && b.get(i + 2) == Some(&b']')
        && b.get(i + 3) != Some(&b'(')
}

/// Classifies one line (already stripped of `\r\n`).
pub(super) fn classify(line: &str) -> LineKind<'_> {
    let b = line.as_bytes();
    let start = skip_ws(b, 0);
    if start == b.len() || line[start..].trim().is_empty() {
        return LineKind::Blank;
    }
    let col = advance(0, &b[..start]);
    if col <= 3 && b[start] == b'#' {
        let mut j = start;
        while j < b.len() && b[j] == b'#' {
            j += 1;
        }
        let level = j - start;
        if level <= 6 && (j == b.len() || is_ws(b[j])) {
            let text = line[j..].trim().trim_end_matches('#').trim_end();
            return LineKind::Heading { level, text };
        }
    }
    let Some(len) = bullet_len(b, start) else {
        return LineKind::Text {
            col,
            content: line[start..].trim_end(),
        };
    };
    let after = start + len;
    let content_at = skip_ws(b, after);
    if content_at == after {
        // `-foo`, `**bold**`, `1.5`: not a bullet at all, unless nothing follows.
        return if after == b.len() {
            LineKind::Bullet { col, content: "" }
        } else {
            LineKind::Text {
                col,
                content: line[start..].trim_end(),
            }
        };
    }
    let (mut box_at, mut indent, mut double_bullet) = (content_at, col, false);
    if matches!(b.get(content_at), Some(b'-' | b'*' | b'+')) {
        let inner = skip_ws(b, content_at + 1);
        if inner > content_at + 1 && is_box(b, inner) {
            box_at = inner;
            indent = advance(col, &b[start..content_at]);
            double_bullet = true;
        }
    }
    if !is_box(b, box_at) {
        return LineKind::Bullet {
            col,
            content: line[content_at..].trim_end(),
        };
    }
    let end = box_at + 3;
    let optional = b.get(end) == Some(&b'*') && b.get(end + 1) != Some(&b'*');
    LineKind::Checkbox(Checkbox {
        indent,
        marker_offset: box_at + 1,
        marker: b[box_at + 1] as char,
        optional,
        rest: &line[end + usize::from(optional)..],
        double_bullet,
    })
}

/// Whether `line` closes a fence opened with `len` copies of `ch`.
pub(super) fn closes_fence(line: &str, ch: u8, len: usize) -> bool {
    let t = line.trim();
    let run = t.bytes().take_while(|&b| b == ch).count();
    run >= len && run == t.len()
}

/// The fence a line opens (its character and length), if it starts one.
pub(super) fn opens_fence(content: &str) -> Option<(u8, usize)> {
    let ch = *content.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let run = content.bytes().take_while(|&b| b == ch).count();
    (run >= 3).then_some((ch, run))
}

/// The id, title and markers read from the text after a checkbox.
pub(super) struct Head<'a> {
    pub key: Option<&'a str>,
    pub title: String,
    pub parallel: bool,
    pub story: Option<&'a str>,
}

/// Whether a token can be an item or requirement id: short, ASCII, with a digit.
pub(super) fn id_like(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 40
        && token.bytes().any(|b| b.is_ascii_digit())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// `[USn]` (a spec-kit user story tag).
fn story_tag(token: &str) -> Option<&str> {
    let inner = token.strip_prefix('[')?.strip_suffix(']')?;
    let digits = inner.strip_prefix("US")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(inner)
}

fn is_parallel_tag(token: &str) -> bool {
    matches!(token, "[P]" | "(P)" | "（P）" | "［P］")
}

/// Consumes `[P]`, `(P)` and `[USn]` tags at the start of `s`.
fn leading_tags<'a>(mut s: &'a str, parallel: &mut bool, story: &mut Option<&'a str>) -> &'a str {
    loop {
        let token_end = s.find([' ', '\t']).unwrap_or(s.len());
        let token = &s[..token_end];
        if is_parallel_tag(token) {
            *parallel = true;
        } else if let Some(tag) = story_tag(token) {
            story.get_or_insert(tag);
        } else {
            return s;
        }
        s = s[token_end..].trim_start();
    }
}

/// Reads the id at the start of `s`: `**X**`, a dotted number (`1.`, `2.1`), a
/// spec-kit id (`T001`, `T006a`) or `Task 3:`. Returns the key and the text after it.
fn take_id(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if let Some(inner_and_rest) = s.strip_prefix("**") {
        let close = inner_and_rest.find("**")?;
        let inner = inner_and_rest[..close].trim().trim_end_matches([':', '.']);
        if !id_like(inner) {
            return None;
        }
        let rest = &inner_and_rest[close + 2..];
        return Some((inner, rest.strip_prefix([':', '.']).unwrap_or(rest)));
    }
    if b.len() > 5 && s.is_char_boundary(5) && s[..5].eq_ignore_ascii_case("task ") {
        return take_number(&s[5..]);
    }
    match b.first()? {
        d if d.is_ascii_digit() => take_number(s),
        b'T' => {
            let mut j = 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j == 1 {
                return None;
            }
            if b.get(j).is_some_and(|c| c.is_ascii_lowercase()) {
                j += 1;
            }
            match b.get(j) {
                None => Some((s, "")),
                Some(&c) if is_ws(c) || c == b':' => Some((&s[..j], &s[j..])),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A dotted number id: `1.` or `2.1` or `3:`; a bare `3 ` is a title, not an id.
fn take_number(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let mut j = 0;
    while j < b.len()
        && (b[j].is_ascii_digit()
            || b[j] == b'.' && j > 0 && b.get(j + 1).is_some_and(|c| c.is_ascii_digit()))
    {
        j += 1;
    }
    if j == 0 {
        return None;
    }
    let core = &s[..j];
    let dot = b.get(j) == Some(&b'.');
    let next = b.get(j + usize::from(dot)).copied();
    match next {
        None => (dot || core.contains('.')).then_some((core, "")),
        Some(c) if is_ws(c) => {
            (dot || core.contains('.')).then_some((core, &s[j + usize::from(dot)..]))
        }
        Some(b':' | b')') if !dot => Some((core, &s[j + 1..])),
        _ => None,
    }
}

/// Reads the id, markers and title from the text after a checkbox.
pub(super) fn head(rest: &str) -> Head<'_> {
    let mut parallel = false;
    let mut story = None;
    let s = leading_tags(rest.trim(), &mut parallel, &mut story);
    let (key, mut s) = match take_id(s) {
        Some((key, after)) => (Some(key), after.trim_start()),
        None => (None, s),
    };
    if key.is_some() {
        s = s.strip_prefix(':').unwrap_or(s).trim_start();
        for dash in ["- ", "– ", "— "] {
            if let Some(after) = s.strip_prefix(dash) {
                s = after.trim_start();
                break;
            }
        }
    }
    let s = leading_tags(s, &mut parallel, &mut story);
    let title = clean_title(s, &mut parallel, &mut story);
    Head {
        key,
        title,
        parallel,
        story,
    }
}

/// Removes `(P)`, `[P]` and `[USn]` wherever they stand in the title; the title keeps
/// its own spacing unless a marker had to be cut out of it.
fn clean_title<'a>(s: &'a str, parallel: &mut bool, story: &mut Option<&'a str>) -> String {
    let s = s.trim();
    let has_marker = s.contains("P)") || s.contains("P]") || s.contains("P］") || s.contains("[US");
    if !has_marker {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for token in s.split_whitespace() {
        if is_parallel_tag(token) {
            *parallel = true;
        } else if let Some(tag) = story_tag(token) {
            story.get_or_insert(tag);
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(token);
        }
    }
    out
}

/// A `_Label: list_` line that links an item to something.
pub(super) enum Label {
    Requirements(Vec<String>),
    Depends(Vec<String>),
}

const REQUIREMENT_WORDS: &[&str] = &[
    "requirements",
    "requirement",
    "requirement(s)",
    "reqs",
    "req",
    "requisitos",
    "requisito",
    "requerimientos",
    "requerimiento",
    "requisiti",
    "exigences",
    "exigence",
    "anforderungen",
    "anforderung",
    "vereisten",
    "krav",
    "wymagania",
    "gereksinimler",
    "persyaratan",
    "требования",
    "yêu cầu",
    "要件",
    "需求",
    "要求",
    "요구사항",
    "요구 사항",
];

const DEPENDS_WORDS: &[&str] = &[
    "depends",
    "depends on",
    "depend on",
    "dependencies",
    "dependency",
    "depends-on",
    "blocked by",
    "depende de",
    "depende",
    "dependências",
    "dependencias",
    "dépend de",
    "dépendances",
    "abhängig von",
    "abhängigkeiten",
    "依存",
    "依存関係",
    "依赖",
    "依賴",
    "의존",
];

const VALIDATES_WORDS: &[&str] = &["validates", "valida", "検証"];

fn word_in(word: &str, list: &[&str]) -> bool {
    if word.is_ascii() {
        list.iter().any(|w| w.eq_ignore_ascii_case(word))
    } else {
        let lower = word.to_lowercase();
        list.iter().any(|w| *w == lower)
    }
}

/// Reads a requirement or dependency line such as `_Requirements: 1.1, 2.3_`,
/// `_要件: 1.1_`, `_Depends on: 1, 2_` or `**Validates: Requirements 1.4**`.
/// A known label followed by something that is not a list of ids (`_需求: 所有需求_`)
/// is prose, not a link, and stays a detail.
pub(super) fn label(content: &str) -> Option<Label> {
    let t = content.trim();
    let colon = t.find([':', '：'])?;
    if colon > 64 {
        return None;
    }
    let name = t[..colon].trim_matches(|c: char| c == '_' || c == '*' || c.is_whitespace());
    let sep = if t[colon..].starts_with(':') {
        1
    } else {
        '：'.len_utf8()
    };
    let list =
        t[colon + sep..].trim_end_matches(|c: char| c == '_' || c == '*' || c.is_whitespace());
    if word_in(name, REQUIREMENT_WORDS) {
        return ids(list, false).map(Label::Requirements);
    }
    if word_in(name, DEPENDS_WORDS) {
        return ids(list, true).map(Label::Depends);
    }
    if word_in(name, VALIDATES_WORDS) {
        let list = list.trim_start();
        let word_end = list.find(char::is_whitespace)?;
        if word_in(&list[..word_end], REQUIREMENT_WORDS) {
            return ids(&list[word_end..], false).map(Label::Requirements);
        }
    }
    None
}

/// Splits a list of ids; `None` unless every entry looks like an id.
fn ids(list: &str, depends: bool) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let separators = |c: char| matches!(c, ',' | ';' | '、' | '，' | '；') || c.is_whitespace();
    for token in list.split(separators) {
        let token = token.trim_matches(|c: char| matches!(c, '(' | ')' | '`' | '.' | '#'));
        if token.is_empty()
            || ["and", "&", "y", "et", "und"]
                .iter()
                .any(|w| w.eq_ignore_ascii_case(token))
        {
            continue;
        }
        if depends && (token.eq_ignore_ascii_case("task") || token.eq_ignore_ascii_case("tasks")) {
            continue;
        }
        if !id_like(token) {
            return None;
        }
        if !out.iter().any(|seen| seen == token) {
            out.push(token.to_owned());
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether a heading starts a spec-kit phase: `Phase 2: …`, `Phase N: …`,
/// `Phase 2.1: …`, `Final Phase: …`, `フェーズ1`. `Phase Dependencies` is not one.
pub(super) fn is_phase_heading(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        return false;
    };
    for cjk in ["フェーズ", "阶段", "階段", "단계"] {
        if let Some(rest) = text.strip_prefix(cjk) {
            return rest.trim_start().starts_with(|c: char| c.is_ascii_digit());
        }
    }
    let first = first.trim_end_matches(':');
    let is_phase_word = |w: &str| {
        ["phase", "fase", "etapa"]
            .iter()
            .any(|p| p.eq_ignore_ascii_case(w))
    };
    if first.eq_ignore_ascii_case("final") {
        return words
            .next()
            .is_some_and(|w| is_phase_word(w.trim_end_matches(':')));
    }
    if first.len() > 5 && first.is_char_boundary(5) && is_phase_word(&first[..5]) {
        return first.as_bytes()[5].is_ascii_digit();
    }
    if !is_phase_word(first) {
        return false;
    }
    let Some(number) = words.next() else {
        return false;
    };
    let number = number.trim_end_matches([':', '.', ')']);
    number.starts_with(|c: char| c.is_ascii_digit())
        || number.len() == 1 && number.bytes().all(|b| b.is_ascii_uppercase())
        || !number.is_empty() && number.bytes().all(|b| matches!(b, b'I' | b'V' | b'X'))
}

/// The parent key by numbering (`"2"` for `"2.1"`), for items written flat.
pub(super) fn numeric_prefix(key: &str) -> Option<&str> {
    if !key.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let dot = key.rfind('.')?;
    (dot > 0).then(|| &key[..dot])
}

/// The spec-kit id a list item without a checkbox starts with (`T001 …`,
/// `[P] T001 …`), which may mean someone wrote a task and forgot its box.
pub(super) fn boxless_task_id(content: &str) -> Option<&str> {
    let mut parallel = false;
    let mut story = None;
    let s = leading_tags(content, &mut parallel, &mut story);
    match take_id(s) {
        Some((key, _)) if key.len() >= 3 && key.starts_with('T') => Some(key),
        _ => None,
    }
}

/// Whether a list item starts with a box holding an unknown status character
/// (`[/]`, `[>]`, `[o]`, `[!]`, `[?]`), which a person probably meant as a status.
pub(super) fn unknown_marker(content: &str) -> Option<char> {
    let b = content.as_bytes();
    if b.first() == Some(&b'[')
        && b.get(2) == Some(&b']')
        && b.get(3).is_none_or(|&c| is_ws(c))
        && matches!(
            b.get(1),
            Some(b'/' | b'>' | b'o' | b'O' | b'!' | b'?' | b'.')
        )
    {
        return Some(b[1] as char);
    }
    None
}
