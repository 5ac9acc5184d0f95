//! Properties of the `tasks.md` parser and writer over generated documents: parsing
//! (and building and checking the graph) never panics on anything, and a status write
//! changes only the marker byte of the item it targets, leaves the structure as it was,
//! and can be undone to the original bytes.

use std::collections::HashSet;

use proptest::prelude::*;
use spectask::domain::tasks_md::{self, Mark, TasksDoc};

/// Pieces of what people write in `tasks.md`, mixed at random: boxes, bullets, ids,
/// markers, labels, headings, fences, frontmatter, line endings and non-ASCII text.
const FRAGMENTS: &[&str] = &[
    "",
    " ",
    "  ",
    "    ",
    "\t",
    "- ",
    "* ",
    "+ ",
    "1. ",
    "2) ",
    "- - ",
    "-",
    "*",
    "[ ]",
    "[x]",
    "[X]",
    "[~]",
    "[-]",
    "[ ]*",
    "[x]*",
    "[/]",
    "[P]",
    "(P)",
    "[US1]",
    "[TASK]",
    "[",
    "]",
    "(",
    "1.",
    "2.1",
    "1.1.1",
    "10.",
    "T001",
    "T006a",
    "**P1.1**:",
    "**",
    "Task 3:",
    " Title",
    " 日本語のタスク",
    "é",
    "🎯",
    "\u{feff}",
    ":",
    "：",
    "_",
    "\n",
    "\n",
    "\n",
    "\r\n",
    "\r\n",
    "\r",
    "# Title\n",
    "## Phase 1: Setup\n",
    "## Phase N: Polish\n",
    "### Notes\n",
    "```\n",
    "~~~\n",
    "---\n",
    "_Requirements: 1.1, 2.3_",
    "_Depends: 1, 2_",
    "_Depends on: T001_",
    "_要件: 1.1_",
    "_需求: 所有需求_",
    "**Validates: Requirements 1.4**",
    "- [ ] 1. Task\n",
    "  - [x] 1.1 Sub\n",
    "- [ ] T001 [P] [US1] Spec-kit\n",
    "- - [x] 5.3 Double\n",
];

fn fragments() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..80).prop_map(|parts| parts.concat())
}

/// Whole lines that are mostly items, so documents have many of them, at varied
/// depths, with varied ids, markers and line endings.
fn item_lines() -> impl Strategy<Value = String> {
    let line = (
        prop::sample::select(&["", "", "  ", "    ", "\t", "      ", "  \t"][..]),
        prop::sample::select(&["- ", "* ", "- - ", "1. ", "-\t", "+ "][..]),
        prop::sample::select(&["[ ]", "[x]", "[X]", "[~]", "[-]", "[ ]*", "[?]", ""][..]),
        prop::sample::select(
            &[
                " 1.",
                " 2.",
                " 1.1",
                " 2.1",
                " 1.1.1",
                " T001",
                " T002",
                " **P1.1**:",
                "",
                " Task 4:",
            ][..],
        ),
        prop::sample::select(&[" A", " (P) B", " [P] [US2] C", " ü 日本", " [TASK] D", ""][..]),
        prop::sample::select(&["\n", "\r\n", "  \n", ""][..]),
    )
        .prop_map(|(indent, bullet, mark, id, title, end)| {
            format!("{indent}{bullet}{mark}{id}{title}{end}")
        });
    let other = prop::sample::select(
        &[
            "\n",
            "  - detail\n",
            "  - _Requirements: 1.1_\n",
            "  - _Depends: 1_\n",
            "## Phase 2: X\n",
            "prose\n",
            "```\n",
            "-\n",
        ][..],
    )
    .prop_map(str::to_owned);
    prop::collection::vec(prop_oneof![4 => line, 1 => other], 0..40)
        .prop_map(|lines| lines.concat())
}

fn documents() -> impl Strategy<Value = String> {
    prop_oneof![
        fragments(),
        item_lines(),
        (item_lines(), fragments()).prop_map(|(a, b)| a + &b)
    ]
}

fn exercise(text: &str) -> TasksDoc {
    let doc = tasks_md::parse(text);
    let graph = tasks_md::graph(&doc);
    let _ = tasks_md::check_graph(&doc, &graph);
    let done: HashSet<String> = doc.items.iter().take(3).map(|i| i.key.clone()).collect();
    let _ = tasks_md::ready(&graph, &done);
    let _ = doc.top_level().count();
    for index in 0..doc.items.len() {
        let _ = doc.children(index).count();
    }
    doc
}

/// The shape of a parse that a status write must not change.
fn shape(doc: &TasksDoc) -> Vec<(String, usize, usize, Option<usize>, String)> {
    doc.items
        .iter()
        .map(|i| (i.key.clone(), i.line, i.depth, i.parent, i.title.clone()))
        .collect()
}

/// The byte range of a 1-based line (without its `\n`).
fn line_range(text: &str, line: usize) -> std::ops::Range<usize> {
    let start: usize = text.split('\n').take(line - 1).map(|l| l.len() + 1).sum();
    let len = text.split('\n').nth(line - 1).map_or(0, str::len);
    start..start + len
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_any_string(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn parse_never_panics_on_lossy_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        exercise(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parse_never_panics_on_task_like_fragments(text in documents()) {
        let doc = exercise(&text);
        for item in &doc.items {
            prop_assert!(item.line >= 1);
            prop_assert_eq!(item.depth == 0, item.parent.is_none());
            if let Some(parent) = item.parent {
                prop_assert!(doc.items[parent].line < item.line);
                prop_assert_eq!(doc.items[parent].depth + 1, item.depth);
            }
        }
    }

    #[test]
    fn set_mark_changes_only_that_items_marker_and_round_trips(text in documents()) {
        let doc = tasks_md::parse(&text);
        for item in &doc.items {
            for mark in [Mark::Pending, Mark::InProgress, Mark::Done] {
                let out = tasks_md::set_mark(&text, item.line, mark).unwrap();
                prop_assert_eq!(out.len(), text.len());
                let changed: Vec<usize> = text
                    .bytes()
                    .zip(out.bytes())
                    .enumerate()
                    .filter(|(_, (a, b))| a != b)
                    .map(|(i, _)| i)
                    .collect();
                prop_assert_eq!(changed.len(), usize::from(item.mark != mark));
                if let Some(&at) = changed.first() {
                    prop_assert!(line_range(&text, item.line).contains(&at));
                    prop_assert_eq!(text.as_bytes()[at - 1], b'[');
                    prop_assert_eq!(text.as_bytes()[at + 1], b']');
                }
                let reparsed = tasks_md::parse(&out);
                prop_assert_eq!(shape(&reparsed), shape(&doc));
                let written = reparsed.items.iter().find(|i| i.line == item.line).unwrap();
                prop_assert_eq!(written.mark, mark);
                let restored = tasks_md::set_marker(&out, item.line, item.marker).unwrap();
                prop_assert_eq!(&restored, &text);
                // Restoring by status gives the same statuses, though an `[~]` may come
                // back as `[-]` when no other item shows which one the author used.
                let by_status = tasks_md::parse(&tasks_md::set_mark(&out, item.line, item.mark).unwrap());
                let marks = |d: &TasksDoc| d.items.iter().map(|i| i.mark).collect::<Vec<_>>();
                prop_assert_eq!(marks(&by_status), marks(&doc));
                prop_assert_eq!(shape(&by_status), shape(&doc));
            }
        }
    }

    #[test]
    fn set_mark_refuses_lines_that_are_not_items(text in documents(), line in 0usize..60) {
        let doc = tasks_md::parse(&text);
        if doc.items.iter().all(|i| i.line != line) {
            prop_assert!(tasks_md::set_mark(&text, line, Mark::Done).is_err());
        }
    }
}
