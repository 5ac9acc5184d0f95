//! Writing a status back: an edit of one byte in the original text, never a
//! re-serialisation, so the rest of the file (line endings, spacing, prose the parser
//! does not understand) is exactly what its author wrote.

use super::parse::{self, Parsed};
use super::{Mark, TasksError};

/// Changes one item's status marker and nothing else: every other byte is identical.
///
/// `line` is the item's 1-based line ([`super::TaskItem::line`]). If the item already
/// has this status the text is returned unchanged, so an `[X]` stays `[X]`. Otherwise
/// the character written follows the document's own style (the one its other items
/// with that status use most), falling back to [`Mark::default_marker`].
pub fn set_mark(text: &str, line: usize, mark: Mark) -> Result<String, TasksError> {
    let parsed = parse::parse_full(text);
    let index = locate(&parsed, text, line)?;
    if parsed.doc.items[index].mark == mark {
        return Ok(text.to_owned());
    }
    let marker = preferred_marker(&parsed, mark);
    Ok(replace(text, parsed.offsets[index], marker))
}

/// Writes an exact marker character (`' '`, `x`, `X`, `~` or `-`) into the item's box,
/// for restoring the character an author used, which [`set_mark`] cannot know once it
/// has been overwritten.
pub fn set_marker(text: &str, line: usize, marker: char) -> Result<String, TasksError> {
    if Mark::from_marker(marker).is_none() {
        return Err(TasksError::InvalidMarker { marker });
    }
    let parsed = parse::parse_full(text);
    let index = locate(&parsed, text, line)?;
    Ok(replace(text, parsed.offsets[index], marker))
}

fn locate(parsed: &Parsed, text: &str, line: usize) -> Result<usize, TasksError> {
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    if line == 0 || line > lines {
        return Err(TasksError::LineOutOfRange { line, lines });
    }
    parsed
        .doc
        .items
        .iter()
        .position(|item| item.line == line)
        .ok_or(TasksError::NotATask { line })
}

fn preferred_marker(parsed: &Parsed, mark: Mark) -> char {
    let mut counts: Vec<(char, usize)> = Vec::new();
    for item in parsed.doc.items.iter().filter(|item| item.mark == mark) {
        match counts.iter_mut().find(|(c, _)| *c == item.marker) {
            Some((_, n)) => *n += 1,
            None => counts.push((item.marker, 1)),
        }
    }
    // The most used; on a tie, the one that appears first in the document.
    let mut best: Option<(char, usize)> = None;
    for (c, n) in counts {
        if best.is_none_or(|(_, most)| n > most) {
            best = Some((c, n));
        }
    }
    best.map_or(mark.default_marker(), |(c, _)| c)
}

/// Replaces the single ASCII byte at `offset`. The parser only records offsets of the
/// ASCII character inside `[ ]`, so both slices end on character boundaries.
fn replace(text: &str, offset: usize, marker: char) -> String {
    let (Some(before), Some(after)) = (text.get(..offset), text.get(offset + 1..)) else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(before);
    out.push(marker);
    out.push_str(after);
    out
}
