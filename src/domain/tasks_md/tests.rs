use std::collections::HashSet;

use super::*;

const CANONICAL: &str = "# Implementation Plan: Add login

- [ ] 1. Create the user table
  - Add the migration and the `User` type
  - _Requirements: 1.1, 1.2_
- [ ] 2. Login endpoint (P)
  - [ ] 2.1 Handler
  - [ ] 2.2 Tests
  - _Requirements: 2.1_
  - _Depends: 1_
- [ ]* 3. Document the endpoint
";

fn keys(doc: &TasksDoc) -> Vec<&str> {
    doc.items.iter().map(|item| item.key.as_str()).collect()
}

fn top_keys(doc: &TasksDoc) -> Vec<&str> {
    doc.top_level().map(|item| item.key.as_str()).collect()
}

fn deps(graph: &TaskGraph, key: &str) -> Vec<String> {
    graph
        .nodes
        .iter()
        .find(|node| node.key == key)
        .unwrap_or_else(|| panic!("no node {key}"))
        .depends
        .clone()
}

/// The byte positions where two equally long texts differ.
fn diff_positions(a: &str, b: &str) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "a marker edit never changes the length");
    a.bytes()
        .zip(b.bytes())
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn canonical_example_reads_keys_nesting_details_and_links() {
    let doc = parse(CANONICAL);
    assert_eq!(doc.title.as_deref(), Some("Implementation Plan: Add login"));
    assert_eq!(keys(&doc), ["1", "2", "2.1", "2.2", "3"]);
    assert_eq!(top_keys(&doc), ["1", "2", "3"]);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);

    let one = doc.get("1").unwrap();
    assert_eq!(one.title, "Create the user table");
    assert_eq!(one.details, ["Add the migration and the `User` type"]);
    assert_eq!(one.requirements, ["1.1", "1.2"]);
    assert_eq!((one.line, one.depth, one.mark), (3, 0, Mark::Pending));

    let two = doc.get("2").unwrap();
    assert_eq!(two.title, "Login endpoint");
    assert!(two.parallel);
    assert_eq!(two.depends, ["1"]);
    assert_eq!(two.requirements, ["2.1"]);
    let index = doc.index_of("2").unwrap();
    let children: Vec<&str> = doc.children(index).map(|c| c.key.as_str()).collect();
    assert_eq!(children, ["2.1", "2.2"]);
    assert_eq!(doc.get("2.1").unwrap().depth, 1);
    assert_eq!(doc.get("2.1").unwrap().title, "Handler");

    let three = doc.get("3").unwrap();
    assert!(three.optional);
    assert_eq!(three.title, "Document the endpoint");
}

#[test]
fn canonical_graph_explicit_depends_wins_over_parallel_and_three_waits_for_two() {
    let doc = parse(CANONICAL);
    let graph = graph(&doc);
    let node_keys: Vec<&str> = graph.nodes.iter().map(|n| n.key.as_str()).collect();
    assert_eq!(node_keys, ["1", "2", "3"]);
    assert!(deps(&graph, "1").is_empty());
    // `(P)` alone would make 2 start with 1; its explicit `_Depends: 1_` wins.
    assert_eq!(deps(&graph, "2"), ["1"]);
    assert_eq!(deps(&graph, "3"), ["2"]);
    assert!(check_graph(&doc, &graph).is_empty());
}

#[test]
fn parallel_items_share_their_predecessors_dependencies_and_the_next_waits_for_all() {
    let doc = parse("- [ ] 1. A\n- [ ] 2. B\n- [ ] 3. C (P)\n- [ ] 4. D [P]\n- [ ] 5. E\n");
    let graph = graph(&doc);
    assert_eq!(deps(&graph, "2"), ["1"]);
    assert_eq!(deps(&graph, "3"), ["1"]);
    assert_eq!(deps(&graph, "4"), ["1"]);
    assert_eq!(deps(&graph, "5"), ["2", "3", "4"]);
}

#[test]
fn status_markers_keep_their_exact_character() {
    let doc = parse("- [ ] 1. a\n- [~] 2. b\n- [-] 3. c\n- [x] 4. d\n- [X] 5. e\n");
    let got: Vec<(Mark, char)> = doc.items.iter().map(|i| (i.mark, i.marker)).collect();
    assert_eq!(
        got,
        [
            (Mark::Pending, ' '),
            (Mark::InProgress, '~'),
            (Mark::InProgress, '-'),
            (Mark::Done, 'x'),
            (Mark::Done, 'X'),
        ]
    );
}

#[test]
fn nesting_to_four_levels_then_back_out() {
    let text = "- [ ] 1. One\n  - [ ] 1.1 Two\n    - [ ] 1.1.1 Three\n      - [x] 1.1.1.1 Four\n        - a detail of four\n    - [ ] 1.1.2 Three again\n- [ ] 2. Top\n";
    let doc = parse(text);
    let shape: Vec<(&str, usize, Option<usize>)> = doc
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.depth, i.parent))
        .collect();
    assert_eq!(
        shape,
        [
            ("1", 0, None),
            ("1.1", 1, Some(0)),
            ("1.1.1", 2, Some(1)),
            ("1.1.1.1", 3, Some(2)),
            ("1.1.2", 2, Some(1)),
            ("2", 0, None),
        ]
    );
    assert_eq!(doc.get("1.1.1.1").unwrap().details, ["a detail of four"]);
}

#[test]
fn crlf_parses_like_lf_and_keeps_line_numbers() {
    let crlf = CANONICAL.replace('\n', "\r\n");
    let (a, b) = (parse(CANONICAL), parse(&crlf));
    assert_eq!(a, b);
    assert!(b.items.iter().all(|i| !i.title.contains('\r')));
}

#[test]
fn tabs_indent_like_four_columns() {
    let doc =
        parse("- [ ] 1. Top\n\t- [ ] 1.1 Sub\n\t\t- [ ] 1.1.1 Subsub\n\t- detail\n- [ ] 2. Next\n");
    let depths: Vec<usize> = doc.items.iter().map(|i| i.depth).collect();
    assert_eq!(depths, [0, 1, 2, 0]);
    assert_eq!(doc.get("1").unwrap().details, ["detail"]);
}

#[test]
fn flat_numbered_sub_items_at_column_zero_nest_by_key_prefix() {
    let doc = parse(
        "- [ ] 1. Parent\n  - detail\n\n- [ ]* 1.1 Property test\n  - **Validates: Requirements 1.4, 1.5**\n\n- [x] 2. Next\n- [ ] 2.1 Its step\n- [ ] 3.1 Orphan\n",
    );
    assert_eq!(top_keys(&doc), ["1", "2", "3.1"]);
    let sub = doc.get("1.1").unwrap();
    assert_eq!((sub.parent, sub.depth, sub.optional), (Some(0), 1, true));
    assert_eq!(sub.requirements, ["1.4", "1.5"]);
    assert_eq!(doc.get("2.1").unwrap().parent, doc.index_of("2"));
}

#[test]
fn spec_kit_phases_are_barriers_and_p_runs_in_parallel_inside_a_phase() {
    let text = "# Tasks: X

## Phase 1: Setup

- [x] T001 Create project
- [x] T002 [P] Configure lint

## Phase 2: User Story 1 (Priority: P1)

### Tests for User Story 1

- [ ] T003 [P] [US1] Contract test
- [ ] T004 [P] [US1] Integration test
- [ ] T005 [US1] Implement
- [ ] T006a [US1] Wire up

## Phase N: Polish

- [ ] T007 [P] Docs
- [ ] T008 [P] Cleanup

## Dependencies & Execution Order

- Phase 1 before Phase 2
";
    let doc = parse(text);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    assert_eq!(doc.items.len(), 8);
    let t3 = doc.get("T003").unwrap();
    assert_eq!(t3.title, "Contract test");
    assert_eq!(t3.story.as_deref(), Some("US1"));
    assert!(t3.parallel);
    assert_eq!(
        t3.phase.as_deref(),
        Some("Phase 2: User Story 1 (Priority: P1)")
    );
    assert_eq!(
        doc.get("T007").unwrap().phase.as_deref(),
        Some("Phase N: Polish")
    );
    assert!(doc.get("T006a").is_some());

    let graph = graph(&doc);
    assert!(deps(&graph, "T001").is_empty());
    assert!(deps(&graph, "T002").is_empty(), "[P] runs alongside T001");
    // The first tasks of phase 2 wait for all of phase 1 (its two parallel tasks).
    assert_eq!(deps(&graph, "T003"), ["T001", "T002"]);
    assert_eq!(deps(&graph, "T004"), ["T001", "T002"]);
    assert_eq!(deps(&graph, "T005"), ["T003", "T004"]);
    assert_eq!(deps(&graph, "T006a"), ["T005"]);
    assert_eq!(deps(&graph, "T007"), ["T006a"]);
    assert_eq!(deps(&graph, "T008"), ["T006a"]);

    let mut done: HashSet<String> = HashSet::new();
    assert_eq!(ready(&graph, &done), ["T001", "T002"]);
    done.extend(["T001".to_owned()]);
    assert_eq!(ready(&graph, &done), ["T002"]);
    done.extend(["T002".to_owned()]);
    assert_eq!(ready(&graph, &done), ["T003", "T004"]);
}

#[test]
fn explicit_depends_with_unknown_key_is_reported_with_its_line() {
    let text = "- [ ] 1. A\n- [ ] 2. B\n  - _Depends on: 1, 9_\n- [ ] 3. C\n  - [ ] 3.1 Step\n    - _Depends: 2.1, 1_\n";
    let doc = parse(text);
    assert_eq!(doc.get("2").unwrap().depends, ["1", "9"]);
    let graph = graph(&doc);
    assert_eq!(deps(&graph, "2"), ["1", "9"]);
    // A sub-item's dependency lands on its unit of work; `2.1` is unknown.
    assert_eq!(deps(&graph, "3"), ["2", "2.1", "1"]);
    let errors = check_graph(&doc, &graph);
    assert_eq!(
        errors,
        [
            GraphError::UnknownDependency {
                task: "2".into(),
                depends_on: "9".into(),
                line: 2
            },
            GraphError::UnknownDependency {
                task: "3".into(),
                depends_on: "2.1".into(),
                line: 5
            },
        ]
    );
}

#[test]
fn sub_item_key_in_depends_means_its_unit_of_work() {
    let doc = parse("- [ ] 1. A\n  - [ ] 1.2 Step\n- [ ] 2. B (P)\n  - _Depends: 1.2_\n");
    let graph = graph(&doc);
    assert_eq!(deps(&graph, "2"), ["1"]);
    assert!(check_graph(&doc, &graph).is_empty());
}

#[test]
fn a_cycle_is_found_with_its_keys_in_order() {
    let doc = parse("- [ ] 1. A\n  - _Depends: 2_\n- [ ] 2. B\n  - _Depends: 1_\n- [ ] 3. C\n");
    let graph = graph(&doc);
    assert_eq!(
        check_graph(&doc, &graph),
        [GraphError::Cycle {
            keys: vec!["1".into(), "2".into()]
        }]
    );
    assert_eq!(ready(&graph, &HashSet::new()), Vec::<String>::new());

    let doc = parse("- [ ] 1. A\n- [ ] 2. B\n  - _Depends: 4_\n- [ ] 3. C\n- [ ] 4. D\n");
    let errors = check_graph(&doc, &super::graph(&doc));
    assert_eq!(
        errors,
        [GraphError::Cycle {
            keys: vec!["2".into(), "4".into(), "3".into()]
        }]
    );
}

#[test]
fn set_mark_changes_exactly_the_marker_byte() {
    let line = 8; // `  - [ ] 2.2 Tests`
    let out = set_mark(CANONICAL, line, Mark::Done).unwrap();
    let offset = CANONICAL.find("[ ] 2.2").unwrap() + 1;
    assert_eq!(diff_positions(CANONICAL, &out), [offset]);
    assert_eq!(out.as_bytes()[offset], b'x');
    assert_eq!(parse(&out).get("2.2").unwrap().mark, Mark::Done);
    assert_eq!(set_mark(&out, line, Mark::Pending).unwrap(), CANONICAL);

    let in_progress = set_mark(CANONICAL, 3, Mark::InProgress).unwrap();
    assert_eq!(parse(&in_progress).get("1").unwrap().marker, '-');
}

#[test]
fn set_mark_on_crlf_keeps_every_line_ending() {
    let crlf = CANONICAL.replace('\n', "\r\n");
    let out = set_mark(&crlf, 11, Mark::Done).unwrap();
    let offset = crlf.find("[ ]* 3.").unwrap() + 1;
    assert_eq!(diff_positions(&crlf, &out), [offset]);
    assert_eq!(out.matches("\r\n").count(), crlf.matches("\r\n").count());
    assert_eq!(set_mark(&out, 11, Mark::Pending).unwrap(), crlf);
}

#[test]
fn set_mark_follows_the_documents_style_and_leaves_equal_status_alone() {
    let text = "- [X] T001 a\n- [X] T002 b\n- [ ] T003 c\n";
    let out = set_mark(text, 3, Mark::Done).unwrap();
    assert!(out.ends_with("- [X] T003 c\n"));
    assert_eq!(set_mark(text, 1, Mark::Done).unwrap(), text);
    assert_eq!(
        set_marker(text, 1, 'x').unwrap(),
        text.replacen("[X]", "[x]", 1)
    );
    assert_eq!(
        set_marker(text, 1, 'q'),
        Err(TasksError::InvalidMarker { marker: 'q' })
    );
}

#[test]
fn set_mark_on_a_line_that_is_not_a_task_is_an_error() {
    assert_eq!(
        set_mark(CANONICAL, 1, Mark::Done),
        Err(TasksError::NotATask { line: 1 })
    );
    assert_eq!(
        set_mark(CANONICAL, 4, Mark::Done),
        Err(TasksError::NotATask { line: 4 })
    );
    assert_eq!(
        set_mark(CANONICAL, 0, Mark::Done),
        Err(TasksError::LineOutOfRange { line: 0, lines: 12 })
    );
    assert_eq!(
        set_mark(CANONICAL, 99, Mark::Done),
        Err(TasksError::LineOutOfRange {
            line: 99,
            lines: 12
        })
    );
    let fenced = "```\n- [ ] 1. not a task\n```\n";
    assert!(parse(fenced).items.is_empty());
    assert_eq!(
        set_mark(fenced, 2, Mark::Done),
        Err(TasksError::NotATask { line: 2 })
    );
}

#[test]
fn malformed_and_stray_lines_become_problems_not_panics() {
    let text = "- [x] 5. Parent\n  - [x] 5.2 Before\n\n- - [x] 5.3 Double bullet\n    - its detail\n-\n- [ ] 6. Next\n- [P] T001 No box\n- T002 No box either\n- [/] odd marker\n";
    let doc = parse(text);
    let fixed = doc.get("5.3").unwrap();
    assert_eq!(
        (fixed.parent, fixed.details.clone()),
        (Some(0), vec!["its detail".to_owned()])
    );
    let lines: Vec<usize> = doc.problems.iter().map(|p| p.line).collect();
    // Lines 8 and 9 mention ids outside any phase in a list that has checkboxes:
    // that is prose (`- T015 and T016 can run in parallel`), not a forgotten box.
    assert_eq!(lines, [4, 10]);
    assert_eq!(top_keys(&doc), ["5", "6"]);
    let out = set_mark(text, 4, Mark::Pending).unwrap();
    assert!(out.contains("- - [ ] 5.3"));
}

#[test]
fn task_ids_without_a_checkbox_are_problems_where_tasks_are_expected() {
    let lines =
        |text: &str| -> Vec<usize> { parse(text).problems.iter().map(|p| p.line).collect() };
    // No checkbox anywhere: the whole list was written without boxes.
    let boxless = parse("## Parallelizable\n- [P] T001 Implement\n- T002 Test\n");
    assert!(boxless.items.is_empty());
    assert_eq!(
        lines("## Parallelizable\n- [P] T001 Implement\n- T002 Test\n"),
        [2, 3]
    );
    // Inside a phase, an id that is not an item is a task that lost its box.
    assert_eq!(
        lines("## Phase 1: Setup\n- [ ] T001 a\n- T002 b\n- T001 is first\n"),
        [3]
    );
    // Elsewhere it is prose about tasks.
    assert!(lines("- [ ] T001 a\n\n## Notes\n- T001 and T002 can run in parallel\n").is_empty());
}

#[test]
fn duplicate_keys_and_id_less_items_among_ids_are_problems() {
    let doc = parse("- [ ] T001 a\n- [ ] T001 b\n\n## Checklist\n- [ ] all links work\n");
    let messages: Vec<(usize, bool)> = doc
        .problems
        .iter()
        .map(|p| (p.line, p.message.contains("duplicate")))
        .collect();
    assert_eq!(messages, [(2, true), (5, false)]);
    assert_eq!(doc.get("T001").unwrap().title, "a");
    assert_eq!(doc.items[2].key, "L5");
    // The later duplicate still gets a node of its own key, without waiting on itself.
    let graph = graph(&doc);
    assert_eq!(graph.nodes.len(), 2);
    assert!(check_graph(&doc, &graph).is_empty());
}

#[test]
fn localized_labels_bold_ids_tags_and_frontmatter() {
    let text = "---\ndescription: \"- [ ] not a task\"\n---\n\n# 実作計劃\n\n- [x] 1. 建立\n  - _需求: 1.1, 2.1_\n  - _要件：3.1_\n- [ ] 2. 其他\n  - _需求: 所有後端相關需求_\n- [x] **P1.1**: Implement `PerfCounters`\n- [ ] [TASK] Update `pom.xml`.\n- [ ] Task 7: Named\n";
    let doc = parse(text);
    assert_eq!(doc.title.as_deref(), Some("実作計劃"));
    assert_eq!(doc.get("1").unwrap().requirements, ["1.1", "2.1", "3.1"]);
    let two = doc.get("2").unwrap();
    assert!(two.requirements.is_empty());
    assert_eq!(two.details, ["_需求: 所有後端相關需求_"]);
    let bold = doc.get("P1.1").unwrap();
    assert_eq!(bold.title, "Implement `PerfCounters`");
    let tagged = &doc.items[3];
    assert_eq!(
        (tagged.key.as_str(), tagged.title.as_str(), tagged.parallel),
        ("L13", "[TASK] Update `pom.xml`.", false)
    );
    assert_eq!(doc.get("7").unwrap().title, "Named");
}

#[test]
fn prose_after_the_list_is_not_a_detail_but_lazy_continuation_is() {
    let doc = parse("- [ ] 1. A\nwrapped title part\n\n**Checkpoint**: stop here\n\n- [ ] 2. B\n");
    assert_eq!(doc.get("1").unwrap().details, ["wrapped title part"]);
    assert!(doc.get("2").unwrap().details.is_empty());
}

#[test]
fn never_panics_on_odd_inputs() {
    for text in [
        "",
        "\n",
        "\r",
        "\r\n",
        "-",
        "- [",
        "- [ ",
        "- [ ]",
        "- [ ]*",
        "- [x]**",
        "- - ",
        "- - [",
        "#",
        "######## x",
        "---",
        "---\n",
        "```",
        "- [ ] **",
        "- [ ] **1",
        "- [ ] Task ",
        "- [ ] T",
        "- [ ] 1.",
        "- [ ] 1..2",
        "\u{feff}- [ ] 1. bom",
        "- [ ] é. ü",
        "\t\t- [~]\t1.\t",
        "1. [ ] numbered",
        "* [X] star",
        "_Requirements:_",
        "- [ ] 1\n  - _Depends: :_",
    ] {
        let doc = parse(text);
        let graph = graph(&doc);
        let _ = check_graph(&doc, &graph);
        let _ = ready(&graph, &HashSet::new());
        for item in &doc.items {
            let out = set_mark(text, item.line, Mark::Done).unwrap();
            assert_eq!(set_marker(&out, item.line, item.marker).unwrap(), text);
        }
    }
    let bom = parse("\u{feff}- [ ] 1. bom");
    assert_eq!(bom.items[0].key, "1");
    assert_eq!(
        set_mark("\u{feff}- [ ] 1. bom", 1, Mark::Done).unwrap(),
        "\u{feff}- [x] 1. bom"
    );
}
