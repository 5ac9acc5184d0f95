//! The requirements parser against the 31 real spec sets in the shared corpus.
//!
//! For every set, the requirements document (`requirements.md`, else Kiro's
//! `bugfix.md`, else spec-kit's `spec.md`) is parsed, and the table below pins what
//! the parser finds: the format, the number of requirements and criteria, the
//! criteria per EARS pattern, the number of problems, and — for sets that also
//! have a `tasks.md` — how many of its requirement links resolve. A change in any
//! number is either a regression or a deliberate improvement; either way the table
//! has to be updated on purpose.
//!
//! The corpus is read from `tests/corpus` (a byte-for-byte copy of the shared one), or from the
//! directory named by `SPECTASK_CORPUS`.

use std::path::{Path, PathBuf};

use spectask::domain::requirements::{
    EarsPattern, RequirementsDoc, RequirementsFormat, parse_requirements,
};

use RequirementsFormat::{Kiro, SpecKit, Unknown};

/// What the parser must find in one set. `ears` counts criteria per pattern in
/// the order ubiquitous, event-driven, state-driven, unwanted behaviour, optional
/// feature, complex, Gherkin, not EARS. `links` is (resolved, total) over the
/// entries of `_Requirements:` lines (also the localized `_需求:` / `_要件:`) in
/// `tasks.md`, when the set has both documents.
struct Expected {
    set: &'static str,
    file: Option<&'static str>,
    format: RequirementsFormat,
    requirements: usize,
    criteria: usize,
    ears: [usize; 8],
    problems: usize,
    links: Option<(usize, usize)>,
}

// One positional argument per table column keeps every row on one line.
#[allow(clippy::too_many_arguments)]
const fn row(
    set: &'static str,
    file: &'static str,
    format: RequirementsFormat,
    requirements: usize,
    criteria: usize,
    ears: [usize; 8],
    problems: usize,
    links: Option<(usize, usize)>,
) -> Expected {
    Expected {
        set,
        file: Some(file),
        format,
        requirements,
        criteria,
        ears,
        problems,
        links,
    }
}

/// A set with no requirements document at all (only `tasks.md` was published).
const fn absent(set: &'static str) -> Expected {
    Expected {
        set,
        file: None,
        format: Unknown,
        requirements: 0,
        criteria: 0,
        ears: [0; 8],
        problems: 0,
        links: None,
    }
}

#[rustfmt::skip]
const TABLE: &[Expected] = &[
    // Kiro, "WHEN …, THE X SHALL" and "THE X SHALL" (ubiquitous).
    row("kiro/01-SatinWukerORIG-ActiveRecalliOS-user-authentication", "requirements.md", Kiro, 8, 40, [15, 25, 0, 0, 0, 0, 0, 0], 0, Some((53, 53))),
    // bugfix.md: no "Requirement N" headings; the explicit ids 1.x / 2.x / 3.x make
    // requirements 1 "Current Behavior (Defect)", 2 "Expected Behavior (Correct)" (its
    // 2.4-2.6 sit under a separate "Runtime Device Switching" heading) and 3
    // "Unchanged Behavior". The three 1.x criteria describe the defect ("THEN the
    // system changes …", no SHALL), so they are not EARS — correctly.
    row("kiro/02-sebsto-wispr-per-engine-device-routing", "bugfix.md", Kiro, 3, 15, [0, 12, 0, 0, 0, 0, 0, 3], 0, Some((23, 23))),
    row("kiro/04-Homas-RpiDNS-custom-period", "requirements.md", Kiro, 7, 35, [14, 20, 0, 1, 0, 0, 0, 0], 0, Some((40, 40))),
    // Early Kiro: "### Requirement 1" without a title (the title falls back to
    // "Requirement 1"), every criterion "WHEN … THEN the system SHALL …".
    row("kiro/05-genthaler-elm-tic-tac-toe-landing-page", "requirements.md", Kiro, 5, 21, [0, 21, 0, 0, 0, 0, 0, 0], 0, Some((34, 34))),
    // Only tasks.md was published for this feature.
    absent("kiro/07-FouadABT-kiroween-dashtact-cron-jobs-management"),
    // "WHEN … THEN I SHALL …": still event-driven.
    row("kiro/08-architect-utils-readme-update", "requirements.md", Kiro, 5, 17, [0, 17, 0, 0, 0, 0, 0, 0], 0, Some((22, 22))),
    // "THEN they SHALL NOT …" / "THEN it SHALL …": event-driven.
    row("kiro/10-Gilfeather-furnace-readme-update", "requirements.md", Kiro, 6, 24, [0, 24, 0, 0, 0, 0, 0, 0], 0, Some((32, 32))),
    row("kiro/11-lukinkratas-yahoo_finance_client-unit-tests", "requirements.md", Kiro, 6, 25, [0, 25, 0, 0, 0, 0, 0, 0], 0, Some((42, 42))),
    // Surprising: Portuguese "WHEN … THEN … deve …" has no SHALL, so all 30 criteria
    // are not EARS (the same rule as the Japanese set 23).
    row("kiro/13-dominiofast-sistema-restaurante-dominio-performance-optimization", "requirements.md", Kiro, 6, 30, [0, 0, 0, 0, 0, 0, 0, 30], 0, Some((36, 36))),
    // Surprising: "### R1: …" headings (ids normalized to "1" … "9") and MoSCoW
    // paragraphs instead of criteria: "**Must**:", "**Must not**:", "**Should**:",
    // "**Acceptance**:" are the 13 criteria, all not EARS. Bullets under
    // "Sources of overhead", "Required metrics:" and "Implementation constraints"
    // are not criteria; R8's threshold bullets are part of its "Should".
    // tasks.md has no _Requirements: lines (it uses **P1.1** ids).
    row("kiro/14-gspivey-dpdk-stdlib-rust-performance-optimization", "requirements.md", Kiro, 9, 13, [0, 0, 0, 0, 0, 0, 0, 13], 0, None),
    // Traditional Chinese ("### 需求 1 - …", "#### 驗收標準", "**用戶故事：**") with
    // English WHEN/IF … THEN 系統 SHALL. tasks.md links with "_需求:"; the 4 links
    // that do not resolve are prose ("所有後端相關需求", "all backend requirements").
    row("kiro/16-YZCUS-kiro-stock-platform-stock-analysis-platform", "requirements.md", Kiro, 5, 32, [0, 28, 0, 4, 0, 0, 0, 0], 0, Some((78, 82))),
    row("kiro/17-MagnumThesis-thesis-copilot-readme-update", "requirements.md", Kiro, 4, 17, [0, 17, 0, 0, 0, 0, 0, 0], 0, Some((38, 38))),
    // "IF …, THEN THE X SHALL" is unwanted behaviour; "WHEN the user clicks … while
    // displaying the last color, THE X SHALL" stays event-driven because "while"
    // does not open a clause there.
    row("kiro/19-TheaBygde-HelloTest-hello-world", "requirements.md", Kiro, 5, 12, [3, 6, 0, 3, 0, 0, 0, 0], 0, Some((23, 23))),
    row("kiro/20-praveenyen-krushi-todo-app", "requirements.md", Kiro, 5, 17, [0, 16, 0, 1, 0, 0, 0, 0], 0, Some((42, 42))),
    // Surprising: 15 of the 192 task links name criteria the document does not
    // have (1.7, 1.8, 3.9, 3.10, 5.9, 5.10, 6.12): requirement 1 has 6 criteria,
    // 3 and 5 have 8, 6 has 11. See `dangling_links_are_pinned`.
    row("kiro/22-JoEz89-Kiro-AutismCenter-autism-center-website", "requirements.md", Kiro, 8, 68, [0, 68, 0, 0, 0, 0, 0, 0], 0, Some((177, 192))),
    // Surprising: Japanese "WHEN … THEN システムは…" has no SHALL: all 15 not EARS.
    row("kiro/23-itsnowcode-kiro_todo-todo-app", "requirements.md", Kiro, 5, 15, [0, 0, 0, 0, 0, 0, 0, 15], 0, Some((48, 48))),
    // "THE WaveKit*Container SHALL" (mangled markdown) is still ubiquitous.
    row("kiro/25-Coriou-WaveKit-docker-setup", "requirements.md", Kiro, 10, 56, [30, 25, 0, 1, 0, 0, 0, 0], 0, Some((46, 46))),
    // Vietnamese with the full keyword set: WHEN, WHILE, IF … THEN, WHERE, THE … SHALL;
    // the one not-EARS criterion is 3.5 "AFTER đăng xuất, THE Admin System SHALL …".
    row("kiro/26-MinhTan17-pap-admin-login-fix", "requirements.md", Kiro, 3, 15, [5, 5, 2, 1, 1, 0, 0, 1], 0, Some((18, 18))),
    // No convention: the numbered list under "## Requirements" is read as four
    // requirements, each its own criterion (format Unknown).
    row("other/01-dngoins-spec-driven-template-001-hello-world", "spec.md", Unknown, 4, 4, [0, 0, 0, 0, 0, 0, 0, 4], 0, None),
    // cc-sdd (Japanese, lower-case EARS "When …, the Web UI shall …"): the only set
    // with complex criteria ("While …, when …, the Web UI shall …") and "**Objective:**"
    // in place of the user story.
    row("other/02-HiroshiKawano-go_iot-dark-mode", "requirements.md", Kiro, 8, 31, [16, 6, 2, 2, 1, 4, 0, 0], 0, Some((61, 61))),
    // An unfilled template: "- Requirement 1", "- Requirement 2" and the two
    // non-functional placeholders are guessed as requirements; the problem is the
    // "Acceptance Checklist" whose 4 items belong to no requirement.
    row("other/04-zophiezlan-tsdice-001-initial-setup", "spec.md", Unknown, 4, 4, [0, 0, 0, 0, 0, 0, 0, 4], 1, None),
    // Hand-rolled: "### 1. Member Service (Port 8081)" under "## Functional
    // Requirements" reads as Kiro requirements 1-5 with bullet criteria 1.1 …; the
    // problem is the trailing "## Acceptance Criteria" checklist outside them.
    row("other/05-ngdatdev-java-microservice-aws-002-java-services", "spec.md", Kiro, 5, 17, [0, 0, 0, 0, 0, 0, 0, 17], 1, None),
    // spec-kit: user stories US1… whose Given/When/Then scenarios are Gherkin, then
    // FR-/SC- items ("System MUST …", not EARS). Japanese.
    row("speckit/01-HIRO15254-sapphire-004-rebrand-to-sapphire", "spec.md", SpecKit, 22, 32, [0, 0, 0, 0, 0, 0, 13, 19], 0, None),
    row("speckit/02-goaikit-aikit-004-docs-create", "spec.md", SpecKit, 17, 27, [0, 0, 0, 0, 0, 0, 15, 12], 0, None),
    row("speckit/04-ph4n70mr1ddl3r-sdd-001-hello-world", "spec.md", SpecKit, 11, 15, [0, 0, 0, 0, 0, 0, 6, 9], 0, None),
    // No H1 title.
    row("speckit/05-steve-keep-pm-test-001-hello-world", "spec.md", SpecKit, 4, 4, [0, 0, 0, 0, 0, 0, 1, 3], 0, None),
    row("speckit/07-saumon-lockswap-001-user-authentication", "spec.md", SpecKit, 20, 26, [0, 0, 0, 0, 0, 0, 9, 17], 0, None),
    // Only tasks.md was published for this feature.
    absent("speckit/08-BilqeesShahid-task8-Basic-Calculator-byCloud-001-calculator"),
    // Korean. Its first "Success Criteria" has no SC ids (not read); the four SC-00x
    // are the leftover template placeholders of the duplicated section.
    row("speckit/10-Kosta-teacher-sdd-workshop-001-todo-app", "spec.md", SpecKit, 14, 20, [0, 0, 0, 0, 0, 0, 10, 10], 0, None),
    // Hard-wrapped scenarios and FRs (continuation lines are joined), plus NFR-001.
    row("speckit/11-rhuss-openshell-sdk-go-011-tunnel-context-cleanup", "spec.md", SpecKit, 12, 14, [0, 0, 0, 0, 0, 0, 4, 10], 0, None),
    // Spanish: "Historia de Usuario 1 … (Prioridad: P1)", "Escenarios de Aceptación",
    // Dado/Cuando/Entonces (Gherkin), RF-001 … and CE-001 … ("DEBE", not EARS).
    row("speckit/13-velosergio-Monolegal-011-email-service-interface", "spec.md", SpecKit, 11, 12, [0, 0, 0, 0, 0, 0, 3, 9], 0, None),
];

fn corpus_root() -> PathBuf {
    match std::env::var_os("SPECTASK_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus")),
    }
}

fn all_sets(root: &Path) -> Vec<String> {
    let mut sets = Vec::new();
    for group in ["kiro", "speckit", "other"] {
        let Ok(entries) = std::fs::read_dir(root.join(group)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                sets.push(format!("{group}/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    sets.sort();
    sets
}

/// The requirements document of a set, by the names each convention uses.
fn requirements_file(dir: &Path) -> Option<&'static str> {
    ["requirements.md", "bugfix.md", "spec.md"]
        .into_iter()
        .find(|name| dir.join(name).is_file())
}

/// The entries of every `_Requirements: 1.1, 2.3_` line (and its Chinese and
/// Japanese labels), read with plain string code so this test does not depend on
/// the tasks.md parser.
fn requirement_links(tasks: &str) -> Vec<String> {
    let mut links = Vec::new();
    for line in tasks.lines() {
        for label in ["_Requirements:", "_需求:", "_要件:"] {
            if let Some(at) = line.find(label) {
                let list = line[at + label.len()..].trim().trim_end_matches('_');
                links.extend(
                    list.split([',', '、', '，'])
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    links
}

fn ears_counts(doc: &RequirementsDoc) -> [usize; 8] {
    let mut counts = [0; 8];
    for criterion in doc.criteria() {
        let slot = EarsPattern::ALL
            .iter()
            .position(|p| *p == criterion.pattern)
            .expect("every pattern is in ALL");
        counts[slot] += 1;
    }
    counts
}

/// What the parser finds in one set, in the table's shape.
fn actual(root: &Path, set: &str) -> Expected {
    let dir = root.join(set);
    let set: &'static str = Box::leak(set.to_string().into_boxed_str());
    let Some(file) = requirements_file(&dir) else {
        return absent(set);
    };
    let text = std::fs::read_to_string(dir.join(file)).expect("corpus file is UTF-8");
    let doc = parse_requirements(&text);
    let links = std::fs::read_to_string(dir.join("tasks.md"))
        .ok()
        .map(|tasks| {
            let links = requirement_links(&tasks);
            let resolved = links.iter().filter(|l| doc.resolves(l)).count();
            (resolved, links.len())
        });
    let links = links.filter(|(_, total)| *total > 0);
    row(
        set,
        file,
        doc.format,
        doc.requirements.len(),
        doc.criteria().count(),
        ears_counts(&doc),
        doc.problems.len(),
        links,
    )
}

fn render(e: &Expected) -> String {
    match e.file {
        None => format!("    absent({:?}),", e.set),
        Some(file) => format!(
            "    row({:?}, {:?}, {:?}, {}, {}, {:?}, {}, {:?}),",
            e.set, file, e.format, e.requirements, e.criteria, e.ears, e.problems, e.links
        ),
    }
}

#[test]
fn every_corpus_set_parses_as_pinned() {
    let root = corpus_root();
    let sets = all_sets(&root);
    assert_eq!(
        sets.len(),
        31,
        "the corpus has 31 sets under {}",
        root.display()
    );
    let actual: Vec<Expected> = sets.iter().map(|s| actual(&root, s)).collect();
    let rendered: Vec<String> = actual.iter().map(render).collect();
    let expected: Vec<String> = TABLE.iter().map(render).collect();
    if rendered != expected {
        panic!(
            "the corpus table changed; actual rows:\n{}\n",
            rendered.join("\n")
        );
    }
}

/// The links in tasks.md that do not resolve, per set: the pinned counts above,
/// spelled out so that a change shows which link moved.
#[test]
fn dangling_links_are_pinned() {
    let root = corpus_root();
    let unresolved = |set: &str| -> Vec<String> {
        let dir = root.join(set);
        let file = requirements_file(&dir).expect("set has a requirements document");
        let doc = parse_requirements(&std::fs::read_to_string(dir.join(file)).unwrap());
        let tasks = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
        requirement_links(&tasks)
            .into_iter()
            .filter(|l| !doc.resolves(l))
            .collect()
    };
    assert_eq!(
        unresolved("kiro/16-YZCUS-kiro-stock-platform-stock-analysis-platform"),
        [
            "所有後端相關需求",
            "所有前端相關需求",
            "所有需求的整合測試",
            "系統穩定性和監控需求"
        ]
    );
    assert_eq!(
        unresolved("kiro/22-JoEz89-Kiro-AutismCenter-autism-center-website"),
        [
            "3.10", "5.9", "5.10", "6.12", "6.12", "6.12", "1.7", "1.7", "1.8", "3.9", "3.10",
            "5.9", "5.10", "6.12", "1.7"
        ]
    );
}

/// Links resolve to the requirement they belong to, across the conventions.
#[test]
fn links_find_their_requirement_in_real_documents() {
    let root = corpus_root();
    let doc = |set: &str, file: &str| {
        parse_requirements(&std::fs::read_to_string(root.join(set).join(file)).unwrap())
    };
    let kiro = doc(
        "kiro/01-SatinWukerORIG-ActiveRecalliOS-user-authentication",
        "requirements.md",
    );
    assert_eq!(
        kiro.requirement_of("3.5").map(|r| r.title.as_str()),
        Some("Password Security")
    );
    assert!(kiro.resolves("Requirements 8.3"));
    assert!(!kiro.resolves("3.6"));

    let bugfix = doc(
        "kiro/02-sebsto-wispr-per-engine-device-routing",
        "bugfix.md",
    );
    let expected = bugfix
        .requirement_of("2.4")
        .expect("2.4 is an expected behaviour");
    assert_eq!(expected.title, "Expected Behavior (Correct)");

    let moscow = doc(
        "kiro/14-gspivey-dpdk-stdlib-rust-performance-optimization",
        "requirements.md",
    );
    assert_eq!(
        moscow.requirement_of("R6").map(|r| r.source_id.as_str()),
        Some("R6")
    );
    assert_eq!(
        moscow.requirement_of("R6.2").map(|r| r.id.as_str()),
        Some("6")
    );
    assert!(moscow.criteria().all(|c| c.pattern == EarsPattern::NotEars));

    let vietnamese = doc("kiro/26-MinhTan17-pap-admin-login-fix", "requirements.md");
    let after = vietnamese.criterion("3.5").expect("criterion 3.5");
    assert!(after.text.starts_with("AFTER"));
    assert_eq!(after.pattern, EarsPattern::NotEars);

    let japanese = doc("kiro/23-itsnowcode-kiro_todo-todo-app", "requirements.md");
    assert!(
        japanese
            .criteria()
            .all(|c| c.text.starts_with("WHEN") && c.pattern == EarsPattern::NotEars)
    );

    let speckit = doc(
        "speckit/07-saumon-lockswap-001-user-authentication",
        "spec.md",
    );
    assert_eq!(
        speckit.requirement_of("US2.3").map(|r| r.id.as_str()),
        Some("US2")
    );
    assert_eq!(
        speckit.requirement_of("SC-001").map(|r| r.id.as_str()),
        Some("SC-001")
    );
    assert!(speckit.resolves("FR-011"));
    assert!(!speckit.resolves("FR-012"));

    let spanish = doc(
        "speckit/13-velosergio-Monolegal-011-email-service-interface",
        "spec.md",
    );
    assert_eq!(spanish.requirements[0].priority.as_deref(), Some("P1"));
    assert!(spanish.resolves("RF-006") && spanish.resolves("CE-003") && spanish.resolves("US2.1"));
}

/// Every markdown file of the corpus (design and tasks documents too) parses
/// without a panic, and every criterion id is linkable in its own document.
#[test]
fn every_corpus_markdown_file_parses_without_panicking() {
    let root = corpus_root();
    let mut files = 0;
    for set in all_sets(&root) {
        for entry in std::fs::read_dir(root.join(&set)).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "md") {
                let text = std::fs::read_to_string(&path).unwrap();
                let doc = parse_requirements(&text);
                let ids = doc.linkable_ids();
                for criterion in doc.criteria() {
                    assert!(
                        ids.contains(&criterion.id),
                        "{}: {}",
                        path.display(),
                        criterion.id
                    );
                    assert!(
                        doc.resolves(&criterion.id),
                        "{}: {}",
                        path.display(),
                        criterion.id
                    );
                }
                files += 1;
            }
        }
    }
    assert!(files >= 80, "read {files} markdown files");
}
