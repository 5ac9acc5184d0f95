//! The `tasks.md` parser against 31 real spec folders written by other people
//! (`tests/corpus`, a byte-for-byte copy of the shared corpus, or the folder named by `SPECTASK_CORPUS`).
//!
//! For every set: parsing never panics; the checkbox items found agree with the
//! MANIFEST's regular-expression counts (or differ by an exact, explained amount);
//! the number of units of work, the problems reported and the graph errors are
//! pinned; and ticking every item then unticking it gives back the original bytes.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use spectask::domain::tasks_md::{self, Mark};

fn corpus_dir() -> PathBuf {
    match std::env::var_os("SPECTASK_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus")),
    }
}

/// One MANIFEST.tsv row, by column name.
struct Row(BTreeMap<String, String>);

impl Row {
    fn count(&self, column: &str) -> usize {
        self.0[column]
            .parse()
            .unwrap_or_else(|_| panic!("{column} is not a number"))
    }
}

fn manifest() -> BTreeMap<String, Row> {
    let path = corpus_dir().join("MANIFEST.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header row").split('\t').collect();
    lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let row: BTreeMap<String, String> = header
                .iter()
                .zip(line.split('\t'))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            (row["dir"].clone(), Row(row))
        })
        .collect()
}

/// What the parser must say about one set. `extra_items` is how many more checkbox
/// items the parser finds than the MANIFEST regex counts; `problem_lines` are the
/// lines of the problems it reports.
struct Pin {
    set: &'static str,
    extra_items: usize,
    top_level: usize,
    problem_lines: &'static [usize],
    graph_errors: usize,
}

/// Why some sets differ from the regex counts:
///
/// - `tasks_top_level_items` counts every unindented checkbox. Kiro (kiro/01, kiro/04)
///   and cc-sdd (other/02) write sub-tasks `N.M` at column 0 too; they are steps of
///   task `N` (its session's checklist), not units of work, so the parser nests them
///   by key prefix and `top_level` equals the MANIFEST's `tasks_top_level_numbered`.
/// - kiro/22 line 110 is `- - [x] 5.3 …`, which the regex misses (a second bullet
///   before the box). It renders as a nested checkbox and is plainly task 5.3, so the
///   parser reads it (one extra item, nested under 5) and reports it as a problem.
/// - other/01 has no checkboxes at all (`- [P] T001 …`): no items, since there is no
///   status to track or tick, and one problem per task-like line so it gets fixed.
/// - speckit/02 ends with a six-item QA checklist without ids after task ids T001–T040:
///   they are items (the regex counts them) and each is reported as a top-level item
///   without an id among items with ids.
///
/// What is deliberately not a problem: bullets that mention ids in prose outside any
/// phase (`- T015 and T016 … can run in parallel` in speckit/07 and speckit/13), the
/// stray lone `-` lines of kiro/22, and kiro/16's `_需求: 所有後端相關需求_`, a known
/// requirements label followed by words rather than ids (kept as a detail). No set
/// writes `_Depends: …_`, so no set has graph errors: every graph is the default
/// ordering (sequential, `[P]` groups, phase barriers).
#[rustfmt::skip]
const PINS: &[Pin] = &[
    // (set, items beyond the MANIFEST count, top-level items, problem lines, graph errors)
    pin_row("kiro/01-SatinWukerORIG-ActiveRecalliOS-user-authentication",               0,  17, &[],                              0),
    pin_row("kiro/02-sebsto-wispr-per-engine-device-routing",                           0,   4, &[],                              0),
    pin_row("kiro/04-Homas-RpiDNS-custom-period",                                       0,  10, &[],                              0),
    pin_row("kiro/05-genthaler-elm-tic-tac-toe-landing-page",                           0,  10, &[],                              0),
    pin_row("kiro/07-FouadABT-kiroween-dashtact-cron-jobs-management",                  0,   3, &[],                              0),
    pin_row("kiro/08-architect-utils-readme-update",                                    0,   6, &[],                              0),
    pin_row("kiro/10-Gilfeather-furnace-readme-update",                                 0,   9, &[],                              0),
    pin_row("kiro/11-lukinkratas-yahoo_finance_client-unit-tests",                      0,   7, &[],                              0),
    pin_row("kiro/13-dominiofast-sistema-restaurante-dominio-performance-optimization", 0,  12, &[],                              0),
    pin_row("kiro/14-gspivey-dpdk-stdlib-rust-performance-optimization",                0,  26, &[],                              0),
    pin_row("kiro/16-YZCUS-kiro-stock-platform-stock-analysis-platform",                0,  12, &[],                              0),
    pin_row("kiro/17-MagnumThesis-thesis-copilot-readme-update",                        0,   6, &[],                              0),
    pin_row("kiro/19-TheaBygde-HelloTest-hello-world",                                  0,   6, &[],                              0),
    pin_row("kiro/20-praveenyen-krushi-todo-app",                                       0,  10, &[],                              0),
    pin_row("kiro/22-JoEz89-Kiro-AutismCenter-autism-center-website",                   1,  21, &[110],                           0),
    pin_row("kiro/23-itsnowcode-kiro_todo-todo-app",                                    0,  12, &[],                              0),
    pin_row("kiro/25-Coriou-WaveKit-docker-setup",                                      0,  11, &[],                              0),
    pin_row("kiro/26-MinhTan17-pap-admin-login-fix",                                    0,   7, &[],                              0),
    pin_row("other/01-dngoins-spec-driven-template-001-hello-world",                    0,   0, &[5, 9, 10, 11, 15, 16],          0),
    pin_row("other/02-HiroshiKawano-go_iot-dark-mode",                                  0,   4, &[],                              0),
    pin_row("other/04-zophiezlan-tsdice-001-initial-setup",                             0,   2, &[],                              0),
    pin_row("other/05-ngdatdev-java-microservice-aws-002-java-services",                0,  27, &[],                              0),
    pin_row("speckit/01-HIRO15254-sapphire-004-rebrand-to-sapphire",                    0,  55, &[],                              0),
    pin_row("speckit/02-goaikit-aikit-004-docs-create",                                 0,  47, &[150, 151, 152, 153, 154, 155],  0),
    pin_row("speckit/04-ph4n70mr1ddl3r-sdd-001-hello-world",                            0,  23, &[],                              0),
    pin_row("speckit/05-steve-keep-pm-test-001-hello-world",                            0,   9, &[],                              0),
    pin_row("speckit/07-saumon-lockswap-001-user-authentication",                       0,  37, &[],                              0),
    pin_row("speckit/08-BilqeesShahid-task8-Basic-Calculator-byCloud-001-calculator",   0,  26, &[],                              0),
    pin_row("speckit/10-Kosta-teacher-sdd-workshop-001-todo-app",                       0,  28, &[],                              0),
    pin_row("speckit/11-rhuss-openshell-sdk-go-011-tunnel-context-cleanup",             0,   5, &[],                              0),
    pin_row("speckit/13-velosergio-Monolegal-011-email-service-interface",              0,  11, &[],                              0),
];

const fn pin_row(
    set: &'static str,
    extra_items: usize,
    top_level: usize,
    problem_lines: &'static [usize],
    graph_errors: usize,
) -> Pin {
    Pin {
        set,
        extra_items,
        top_level,
        problem_lines,
        graph_errors,
    }
}

fn pin(set: &str) -> Option<&'static Pin> {
    PINS.iter().find(|pin| pin.set == set)
}

/// `T` and three digits, then anything (`T006a` too), as the MANIFEST's regex counts.
fn is_spec_kit_id(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() >= 4 && b[0] == b'T' && b[1..4].iter().all(u8::is_ascii_digit)
}

/// Every corpus set that has a `tasks.md`, with its text.
fn corpus_sets() -> Vec<(String, String)> {
    manifest()
        .into_keys()
        .filter_map(|set| {
            let text = std::fs::read_to_string(corpus_dir().join(&set).join("tasks.md")).ok()?;
            Some((set, text))
        })
        .collect()
}

fn set_text(prefix: &str) -> String {
    corpus_sets()
        .into_iter()
        .find(|(set, _)| set.starts_with(prefix))
        .unwrap_or_else(|| panic!("no corpus set {prefix}"))
        .1
}

#[test]
fn every_corpus_set_parses_as_pinned() {
    let manifest = manifest();
    assert!(!manifest.is_empty(), "the MANIFEST lists no sets");
    let default_corpus = std::env::var_os("SPECTASK_CORPUS").is_none();
    let mut failures = Vec::new();
    for (set, row) in &manifest {
        let path = corpus_dir().join(set).join("tasks.md");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let doc = tasks_md::parse(&text);
        let graph = tasks_md::graph(&doc);
        let errors = tasks_md::check_graph(&doc, &graph);
        let top_level = doc.top_level().count();
        let problem_lines: Vec<usize> = doc.problems.iter().map(|p| p.line).collect();
        println!(
            "{set}: items {} (manifest {}), top {top_level}, problems {problem_lines:?}, graph errors {errors:?}",
            doc.items.len(),
            row.count("tasks_checkbox_lines")
        );
        let Some(pin) = pin(set) else {
            if default_corpus {
                failures.push(format!("{set}: not pinned"));
            }
            continue;
        };
        let expected_items = row.count("tasks_checkbox_lines") + pin.extra_items;
        let checks = [
            ("items", doc.items.len(), expected_items),
            ("top-level items", top_level, pin.top_level),
            ("graph errors", errors.len(), pin.graph_errors),
        ];
        for (what, got, want) in checks {
            if got != want {
                failures.push(format!("{set}: {what} {got}, expected {want}"));
            }
        }
        // The status counts agree with the regex's, over the lines the regex sees (it
        // does not see the malformed `- - [x]` line, which is reported as a problem).
        let seen: Vec<_> = doc
            .items
            .iter()
            .filter(|item| !problem_lines.contains(&item.line))
            .collect();
        let done = seen.iter().filter(|item| item.mark == Mark::Done).count();
        let in_progress = seen
            .iter()
            .filter(|item| item.mark == Mark::InProgress)
            .count();
        let spec_kit_ids = doc
            .items
            .iter()
            .filter(|item| is_spec_kit_id(&item.key))
            .count();
        let manifest_checks = [
            ("done items", done, row.count("tasks_checked_x")),
            (
                "in-progress items",
                in_progress,
                row.count("tasks_in_progress"),
            ),
            (
                "items keyed T###",
                spec_kit_ids,
                row.count("tasks_T###_task_lines"),
            ),
        ];
        for (what, got, want) in manifest_checks {
            if got != want {
                failures.push(format!("{set}: {what} {got}, MANIFEST says {want}"));
            }
        }
        if problem_lines != pin.problem_lines {
            failures.push(format!(
                "{set}: problems on lines {problem_lines:?}, expected {:?}: {:?}",
                pin.problem_lines, doc.problems
            ));
        }
    }
    if default_corpus {
        for pin in PINS {
            if !manifest.contains_key(pin.set) {
                failures.push(format!("{}: pinned but not in the MANIFEST", pin.set));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Ticking every item, one write at a time, changes exactly one marker byte per item
/// that was not done; putting each back (by status, in the document's own style)
/// gives back the original bytes.
#[test]
fn marking_every_item_done_and_back_gives_the_original_bytes() {
    for (set, original) in corpus_sets() {
        let doc = tasks_md::parse(&original);
        let mut text = original.clone();
        for item in &doc.items {
            let before = text.clone();
            text = tasks_md::set_mark(&text, item.line, Mark::Done)
                .unwrap_or_else(|e| panic!("{set} line {}: {e}", item.line));
            let changed: Vec<usize> = before
                .bytes()
                .zip(text.bytes())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, _)| i)
                .collect();
            assert_eq!(before.len(), text.len(), "{set} line {}", item.line);
            let expected = usize::from(item.mark != Mark::Done);
            assert_eq!(changed.len(), expected, "{set} line {}", item.line);
            if let Some(&at) = changed.first() {
                let line = before[..at].matches('\n').count() + 1;
                assert_eq!(line, item.line, "{set}: the change is on the item's line");
                assert!(
                    matches!(text.as_bytes()[at], b'x' | b'X'),
                    "{set} line {line}"
                );
            }
        }
        let done = tasks_md::parse(&text);
        assert!(
            done.items.iter().all(|item| item.mark == Mark::Done),
            "{set}"
        );
        assert_eq!(
            done.items.len(),
            doc.items.len(),
            "{set}: same items after ticking"
        );
        for item in &doc.items {
            text = tasks_md::set_mark(&text, item.line, item.mark).unwrap();
        }
        assert!(
            text == original,
            "{set}: unticking did not restore the original bytes"
        );
    }
}

/// What the parser makes of the quirks the corpus NOTES list.
#[test]
fn corpus_quirks_are_read_as_their_authors_meant() {
    // kiro/01: flat `N.M` at column 0 are steps of task N; `**Validates: …**` links.
    let doc = tasks_md::parse(&set_text("kiro/01"));
    let one = doc.index_of("1").unwrap();
    let children: Vec<&str> = doc.children(one).map(|c| c.key.as_str()).collect();
    assert_eq!(children, ["1.1"]);
    assert_eq!(doc.get("1.1").unwrap().requirements, ["1.1", "3.1", "3.3"]);

    // kiro/04: `- [ ]*` optional sub-tasks at column 0.
    let doc = tasks_md::parse(&set_text("kiro/04"));
    let optional: Vec<&str> = doc
        .items
        .iter()
        .filter(|i| i.optional)
        .map(|i| i.key.as_str())
        .collect();
    assert_eq!(optional, ["1.1", "2.1", "6.1", "7.1", "9.1"]);
    assert!(
        doc.items
            .iter()
            .filter(|i| i.optional)
            .all(|i| i.depth == 1)
    );

    // kiro/14: bold ids and `## Phase N` headings.
    let doc = tasks_md::parse(&set_text("kiro/14"));
    let p = doc.get("P2.1").unwrap();
    assert_eq!(
        p.phase.as_deref(),
        Some("Phase 2: Quick Wins (Low-Risk, High-Impact)")
    );
    assert!(p.title.starts_with("Implement adaptive polling"));

    // kiro/16: the Chinese `_需求:` label; `_需求: 所有…_` (no ids) stays a detail.
    let doc = tasks_md::parse(&set_text("kiro/16"));
    assert_eq!(
        doc.get("2.1").unwrap().requirements,
        ["1.1", "2.1", "3.1", "4.1"]
    );
    assert!(doc.get("11.1").unwrap().requirements.is_empty());

    // kiro/22: `[-]` in progress, lone `-` lines, and `- - [x] 5.3`.
    let doc = tasks_md::parse(&set_text("kiro/22"));
    assert_eq!(doc.get("5.3").unwrap().parent, doc.index_of("5"));
    assert_eq!(doc.get("16").unwrap().mark, Mark::InProgress);
    assert_eq!(doc.get("1").unwrap().details.len(), 5);

    // other/01: `- [P] T001 …` without boxes: no items, a problem per line.
    let doc = tasks_md::parse(&set_text("other/01"));
    assert!(doc.items.is_empty());
    assert!(
        doc.problems
            .iter()
            .all(|p| p.message.contains("without a checkbox"))
    );

    // other/05: `[TASK]`/`[VERIFY]` are not parallel markers; phases are `Phase 2.1`.
    let doc = tasks_md::parse(&set_text("other/05"));
    assert!(doc.items.iter().all(|i| !i.parallel));
    assert!(doc.items[5].title.starts_with("[VERIFY] Test Member CRUD"));
    let graph = tasks_md::graph(&doc);
    assert_eq!(
        graph.nodes[6].depends,
        [doc.items[5].key.clone()],
        "phase 2.2 waits for 2.1"
    );

    // speckit/02: the uppercase `[X]`, the suffixed id, the id-less checklist.
    let doc = tasks_md::parse(&set_text("speckit/02"));
    assert_eq!(doc.get("T006a").unwrap().marker, 'X');
    assert_eq!(doc.get("T006a").unwrap().story.as_deref(), Some("US1"));

    // speckit/04: YAML frontmatter; `[P]` groups and phase barriers in the graph.
    let doc = tasks_md::parse(&set_text("speckit/04"));
    assert_eq!(doc.title.as_deref(), Some("Tasks: Hello World Program"));
    let graph = tasks_md::graph(&doc);
    let deps = |key: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.key == key)
            .unwrap()
            .depends
            .clone()
    };
    assert_eq!(deps("T004"), ["T001", "T002", "T003"]);
    assert_eq!(deps("T009"), ["T007", "T008"]);
    let mut done: HashSet<String> = ["T001", "T002", "T003"].map(String::from).into();
    assert_eq!(tasks_md::ready(&graph, &done), ["T004", "T005", "T006"]);
    done.extend(["T004", "T005", "T006", "T007"].map(String::from));
    assert_eq!(tasks_md::ready(&graph, &done), ["T008"]);

    // speckit/05: `Phase N: Polish` is a phase.
    let doc = tasks_md::parse(&set_text("speckit/05"));
    assert_eq!(
        doc.get("T009").unwrap().phase.as_deref(),
        Some("Phase N: Polish & Cross-Cutting Concerns")
    );
}

/// `SPECTASK_TASKS_DUMP=kiro/22 cargo test --test tasks_md_corpus dump -- --nocapture`
/// prints the parse and graph of the sets whose folder contains that text, as JSON, for
/// looking at what the parser made of a file.
#[test]
fn dump() {
    let Ok(filter) = std::env::var("SPECTASK_TASKS_DUMP") else {
        return;
    };
    for set in manifest().keys().filter(|set| set.contains(&filter)) {
        let Ok(text) = std::fs::read_to_string(corpus_dir().join(set).join("tasks.md")) else {
            continue;
        };
        let doc = tasks_md::parse(&text);
        let graph = tasks_md::graph(&doc);
        let report = serde_json::json!({
            "set": set,
            "doc": doc,
            "graph": graph,
            "errors": tasks_md::check_graph(&doc, &graph),
        });
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    }
}
