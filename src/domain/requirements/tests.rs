use proptest::prelude::*;

use super::*;

use EarsPattern::*;

#[test]
fn ubiquitous_in_any_case() {
    assert_eq!(
        classify_ears("The system shall log every request."),
        Ubiquitous
    );
    assert_eq!(
        classify_ears("THE Authentication_System SHALL hash all passwords"),
        Ubiquitous
    );
    assert_eq!(
        classify_ears("the api shall not expose secrets"),
        Ubiquitous
    );
    assert_eq!(
        classify_ears("3. THE Build_System SHALL use multi-stage builds"),
        Ubiquitous
    );
    // English keywords inside other scripts, with or without spaces around them.
    assert_eq!(
        classify_ears("The Web UI shall 全画面にトグルを提供する。"),
        Ubiquitous
    );
    assert_eq!(classify_ears("系統SHALL顯示所有股票"), Ubiquitous);
}

#[test]
fn event_driven_classic_and_kiro_variants() {
    assert_eq!(
        classify_ears("When a user logs in, the system shall open the dashboard."),
        EventDriven
    );
    assert_eq!(
        classify_ears("WHEN the application loads THEN the system SHALL display a landing page"),
        EventDriven
    );
    assert_eq!(
        classify_ears("WHEN I read the README THEN I SHALL see all 9 utilities"),
        EventDriven
    );
    assert_eq!(
        classify_ears("when a user clicks THEN they SHALL NOT see curl commands"),
        EventDriven
    );
    assert_eq!(
        classify_ears("1. WHEN 用戶輸入有效的股票代號 THEN 系統 SHALL 將該股票新增至股票清單"),
        EventDriven
    );
    // "while" inside the trigger, not opening a clause, is prose.
    assert_eq!(
        classify_ears(
            "WHEN the user clicks the button while displaying the last color, THE Button SHALL wrap around"
        ),
        EventDriven
    );
}

#[test]
fn state_unwanted_and_optional() {
    assert_eq!(
        classify_ears("While the user is logged in, the system shall keep the session."),
        StateDriven
    );
    assert_eq!(
        classify_ears("WHILE admin đã đăng nhập, THE Admin System SHALL duy trì trạng thái"),
        StateDriven
    );
    assert_eq!(
        classify_ears("If the token is invalid, then the API shall return 401."),
        UnwantedBehaviour
    );
    assert_eq!(
        classify_ears("IF the input field is empty THEN the system SHALL NOT create a todo"),
        UnwantedBehaviour
    );
    assert_eq!(
        classify_ears("IF no clients are connected, THE Container SHALL buffer audio"),
        UnwantedBehaviour
    );
    assert_eq!(
        classify_ears("Where dark mode is enabled, the UI shall use the dark palette."),
        OptionalFeature
    );
    assert_eq!(
        classify_ears("WHERE admin đã đăng nhập thành công, THE Admin System SHALL hiển thị"),
        OptionalFeature
    );
}

#[test]
fn complex_combines_keywords() {
    assert_eq!(
        classify_ears(
            "While in maintenance mode, when a user logs in, the system shall show a banner."
        ),
        Complex
    );
    assert_eq!(
        classify_ears(
            "While テーマの手動選択が保存されていない, when OS の外観設定が変更された, the Web UI shall 追従させる。"
        ),
        Complex
    );
    assert_eq!(
        classify_ears("WHEN a user signs up, IF the email exists THEN the system SHALL refuse"),
        Complex
    );
    // The same keyword twice is still one pattern.
    assert_eq!(
        classify_ears("When A, when B, the system shall C"),
        EventDriven
    );
}

#[test]
fn not_ears_examples() {
    // MoSCoW and spec-kit MUST: no "shall".
    assert_eq!(
        classify_ears("**Must**: Eliminate per-packet heap allocation"),
        NotEars
    );
    assert_eq!(
        classify_ears("**Should**: Replace MPSC app_ring with per-worker rings"),
        NotEars
    );
    assert_eq!(
        classify_ears("System MUST document all actual CLI commands"),
        NotEars
    );
    assert_eq!(
        classify_ears("El sistema DEBE definir un contrato abstracto"),
        NotEars
    );
    // A precondition EARS does not have.
    assert_eq!(
        classify_ears("AFTER đăng xuất, THE Admin System SHALL yêu cầu đăng nhập lại"),
        NotEars
    );
    assert_eq!(
        classify_ears("After logout the system shall clear the cookie"),
        NotEars
    );
    assert_eq!(
        classify_ears("In dark mode, the system shall dim the logo"),
        NotEars
    );
    // Japanese and Portuguese responses without SHALL.
    assert_eq!(
        classify_ears("WHEN ユーザーがアプリを開く THEN システムはすべてのタスクを表示する"),
        NotEars
    );
    assert_eq!(
        classify_ears("WHEN o sistema é carregado THEN a aplicação deve inicializar"),
        NotEars
    );
    // "shall" must be a whole word.
    assert_eq!(
        classify_ears("When the pool is shallow, the system logs it"),
        NotEars
    );
    assert_eq!(classify_ears(""), NotEars);
    assert_eq!(classify_ears("   1.  "), NotEars);
}

#[test]
fn gherkin_is_its_own_pattern() {
    let scenario = "**Given** a visitor is on the login page, **When** they submit, **Then** they are logged in.";
    assert_eq!(classify_ears(scenario), Gherkin);
    assert_eq!(
        classify_ears("Given X, when Y, then the system shall Z"),
        Gherkin
    );
    assert_eq!(
        classify_ears("**Dado** un cliente, **Cuando** solicita, **Entonces** recibe"),
        Gherkin
    );
    assert_eq!(
        classify_ears("**Given** 빈 ToDo 목록, **When** 항목 추가, **Then** 목록에 존재함"),
        Gherkin
    );
    assert!(!Gherkin.is_ears() && !NotEars.is_ears() && Complex.is_ears());
}

#[test]
fn patterns_serialize_in_snake_case() {
    let names: Vec<String> = EarsPattern::ALL
        .iter()
        .map(|p| {
            serde_json::to_value(p)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let display: Vec<String> = EarsPattern::ALL.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        names,
        [
            "ubiquitous",
            "event_driven",
            "state_driven",
            "unwanted_behaviour",
            "optional_feature",
            "complex",
            "gherkin",
            "not_ears"
        ]
    );
    assert_eq!(names, display);
    assert_eq!(
        serde_json::to_value(RequirementsFormat::SpecKit).unwrap(),
        "spec_kit"
    );
}

const KIRO: &str = "# Requirements Document

## Introduction

A login feature.

## Requirements

### Requirement 1: User Login

**User Story:** As a user, I want to log in,
so that I can see my data.

#### Acceptance Criteria

1. WHEN a user submits valid credentials THEN the system SHALL create a session
2. IF the password is wrong, THEN the system SHALL show an error
   and keep the form filled
3. The system shall rate-limit login attempts
   - at most 5 per minute

### Requirement 2: Logout

**User Story:** As a user, I want to log out, so that nobody else uses my session.

#### Acceptance Criteria

1. WHILE a session is active, the system SHALL show a logout button
2. Users Must be able to log out from any page
";

#[test]
fn kiro_document_with_two_requirements() {
    let doc = parse_requirements(KIRO);
    assert_eq!(doc.format, RequirementsFormat::Kiro);
    assert_eq!(doc.title.as_deref(), Some("Requirements Document"));
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    assert_eq!(doc.requirements.len(), 2);
    let first = &doc.requirements[0];
    assert_eq!(
        (first.id.as_str(), first.source_id.as_str()),
        ("1", "Requirement 1")
    );
    assert_eq!(first.title, "User Login");
    assert_eq!(first.line, 9);
    assert_eq!(
        first.user_story.as_deref(),
        Some("As a user, I want to log in, so that I can see my data.")
    );
    let ids: Vec<&str> = first.criteria.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["1.1", "1.2", "1.3"]);
    let patterns: Vec<EarsPattern> = first.criteria.iter().map(|c| c.pattern).collect();
    assert_eq!(patterns, [EventDriven, UnwantedBehaviour, Ubiquitous]);
    assert_eq!(first.criteria[0].line, 16);
    assert_eq!(
        first.criteria[1].text,
        "IF the password is wrong, THEN the system SHALL show an error and keep the form filled"
    );
    assert_eq!(
        first.criteria[2].text,
        "The system shall rate-limit login attempts\n- at most 5 per minute"
    );
    let second = &doc.requirements[1];
    assert_eq!(second.title, "Logout");
    let patterns: Vec<(&str, EarsPattern)> = second
        .criteria
        .iter()
        .map(|c| (c.id.as_str(), c.pattern))
        .collect();
    assert_eq!(patterns, [("2.1", StateDriven), ("2.2", NotEars)]);
    assert_eq!(
        doc.linkable_ids(),
        ["1", "1.1", "1.2", "1.3", "2", "2.1", "2.2"]
    );
}

#[test]
fn crlf_lone_cr_bom_and_tabs_read_the_same() {
    let lf = parse_requirements(KIRO);
    let crlf = parse_requirements(&format!("\u{feff}{}", KIRO.replace('\n', "\r\n")));
    let cr = parse_requirements(&KIRO.replace('\n', "\r"));
    let tabs = parse_requirements(&KIRO.replace("   - at most", "\t- at most"));
    assert_eq!(crlf, lf);
    assert_eq!(cr, lf);
    assert_eq!(tabs, lf);
    assert!(crlf.criteria().all(|c| !c.text.contains('\r')));
}

const SPEC_KIT: &str = "# Feature Specification: Login

## User Scenarios & Testing *(mandatory)*

### User Story 1 - Log in (Priority: P1)

A visitor logs in with email and password
and lands on the homepage.

**Why this priority**: Core value.

**Independent Test**: Log in and see the homepage.

**Acceptance Scenarios**:

1. **Given** an account, **When** the visitor submits the right password, **Then** the homepage shows
2. **Given** an account, **When** the password is wrong,
   **Then** an error shows

---

### Edge Cases

- What happens with empty fields?

## Requirements *(mandatory)*

### Functional Requirements

- **FR-001**: System MUST allow login with email and password.
- **FR-002**: The system shall lock an account after 5 failures.

## Success Criteria *(mandatory)*

- **SC-001**: Users log in within 10 seconds.
";

#[test]
fn spec_kit_stories_and_functional_requirements() {
    let doc = parse_requirements(SPEC_KIT);
    assert_eq!(doc.format, RequirementsFormat::SpecKit);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    let ids: Vec<&str> = doc.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["US1", "FR-001", "FR-002", "SC-001"]);
    let story = &doc.requirements[0];
    assert_eq!(story.title, "Log in");
    assert_eq!(story.priority.as_deref(), Some("P1"));
    assert_eq!(
        story.user_story.as_deref(),
        Some("A visitor logs in with email and password and lands on the homepage.")
    );
    let scenarios: Vec<(&str, EarsPattern)> = story
        .criteria
        .iter()
        .map(|c| (c.id.as_str(), c.pattern))
        .collect();
    assert_eq!(scenarios, [("US1.1", Gherkin), ("US1.2", Gherkin)]);
    assert!(story.criteria[1].text.ends_with("**Then** an error shows"));
    let fr = &doc.requirements[1];
    assert_eq!(fr.criteria.len(), 1);
    assert_eq!(fr.criteria[0].id, "FR-001");
    assert_eq!(
        fr.criteria[0].text,
        "System MUST allow login with email and password."
    );
    assert_eq!(fr.title, fr.criteria[0].text);
    assert_eq!(fr.criteria[0].pattern, NotEars);
    assert_eq!(doc.requirements[2].criteria[0].pattern, Ubiquitous);
    assert!(doc.resolves("US1.2") && doc.resolves("FR-002") && doc.resolves("SC-001"));
    assert_eq!(
        doc.requirement_of("US1.1").map(|r| r.id.as_str()),
        Some("US1")
    );
    assert_eq!(
        doc.requirement_of("fr-1").map(|r| r.id.as_str()),
        Some("FR-001")
    );
    assert!(!doc.resolves("US1.3"));
}

#[test]
fn resolves_and_requirement_of_accept_what_tasks_write() {
    let doc = parse_requirements(KIRO);
    for link in [
        "1.2",
        "1",
        " 2.1 ",
        "Requirement 1.2",
        "Requirements 1.2",
        "Req 1.2",
        "REQ-1.2",
        "R1.2",
        "r1",
        "1.2 (partial)",
        "`1.2`",
        "_1.2_",
        "1.2.",
        "AC 1.2",
        "需求 2.1",
        "1.1-1.3",
        "1.1–1.3",
    ] {
        assert!(doc.resolves(link), "{link:?} should resolve");
    }
    for link in [
        "1.4",
        "3",
        "3.1",
        "",
        "   ",
        "all requirements",
        "1.1-1.9",
        "12",
        "1-3",
        "FR-001",
    ] {
        assert!(!doc.resolves(link), "{link:?} should not resolve");
    }
    assert_eq!(doc.requirement_of("1.2").map(|r| r.id.as_str()), Some("1"));
    assert_eq!(
        doc.requirement_of("Requirement 2")
            .map(|r| r.title.as_str()),
        Some("Logout")
    );
    assert_eq!(
        doc.requirement_of("2.2 (partial)").map(|r| r.id.as_str()),
        Some("2")
    );
    assert!(doc.requirement_of("9.9").is_none());
    assert_eq!(doc.criterion("R2.1").map(|c| c.pattern), Some(StateDriven));
}

#[test]
fn requirement_heading_variants() {
    let text = "# Reqs

## Requirement 1
**User Story**: As an admin, I want audit logs.
- The system shall record logins
- The system shall record logouts

**Requirement 2: Exports**

**Acceptance Criteria:**
* [ ] WHEN an export is requested THEN the system SHALL send a CSV

### R3: Retention
1) WHERE retention is configured, the system SHALL delete old logs

### REQ-04 - Archive
1. IF the archive fails THEN the system SHALL alert

## Requirements

### 5. Numbered
1. The system SHALL do five things

#### 需求 6 - 中文
1. WHEN 用戶登入 THEN 系統 SHALL 記錄
";
    let doc = parse_requirements(text);
    assert!(doc.problems.is_empty(), "{:?}", doc.problems);
    let summary: Vec<(&str, &str, &str, Vec<&str>)> = doc
        .requirements
        .iter()
        .map(|r| {
            (
                r.id.as_str(),
                r.source_id.as_str(),
                r.title.as_str(),
                r.criteria.iter().map(|c| c.id.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("1", "Requirement 1", "Requirement 1", vec!["1.1", "1.2"]),
            ("2", "Requirement 2", "Exports", vec!["2.1"]),
            ("3", "R3", "Retention", vec!["3.1"]),
            ("4", "REQ-04", "Archive", vec!["4.1"]),
            ("5", "5", "Numbered", vec!["5.1"]),
            ("6", "需求 6", "中文", vec!["6.1"]),
        ]
    );
    assert_eq!(
        doc.requirements[0].user_story.as_deref(),
        Some("As an admin, I want audit logs.")
    );
    assert_eq!(
        doc.requirements[1].criteria[0].text,
        "WHEN an export is requested THEN the system SHALL send a CSV"
    );
    assert_eq!(doc.requirements[2].criteria[0].pattern, OptionalFeature);
    assert!(doc.resolves("R3.1") && doc.resolves("REQ-4") && doc.resolves("6.1"));
}

#[test]
fn bugfix_explicit_ids_make_requirements() {
    let text = "# Bugfix Requirements Document

## Bug Analysis

### Current Behavior (Defect)

1.1 WHEN capture starts THEN the system changes the global default

### Expected Behavior (Correct)

2.1 WHEN capture starts THEN the system SHALL leave the global default alone

### Runtime Switching

2.2 WHEN the device changes THEN the system SHALL use the new device
";
    let doc = parse_requirements(text);
    assert_eq!(doc.format, RequirementsFormat::Kiro);
    let summary: Vec<(&str, &str, usize)> = doc
        .requirements
        .iter()
        .map(|r| (r.id.as_str(), r.title.as_str(), r.criteria.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("1", "Current Behavior (Defect)", 1),
            ("2", "Expected Behavior (Correct)", 2)
        ]
    );
    assert_eq!(doc.requirements[0].criteria[0].pattern, NotEars);
    assert_eq!(doc.requirement_of("2.2").map(|r| r.id.as_str()), Some("2"));
}

#[test]
fn moscow_paragraphs_are_criteria() {
    let text = "## Requirements

### R1: Fast path

The loop allocates.

**Must**: Remove the allocation. Options include
pools or slabs.

**Sources of overhead**:
- mutexes
- checksums

**Should**: Compare against thresholds:
- 5% drop
- 300 us

**Acceptance**: perf shows no allocations.
";
    let doc = parse_requirements(text);
    let criteria: Vec<(&str, &str)> = doc
        .criteria()
        .map(|c| (c.id.as_str(), c.text.as_str()))
        .collect();
    assert_eq!(
        criteria,
        [
            (
                "1.1",
                "**Must**: Remove the allocation. Options include pools or slabs."
            ),
            (
                "1.2",
                "**Should**: Compare against thresholds:\n- 5% drop\n- 300 us"
            ),
            ("1.3", "**Acceptance**: perf shows no allocations."),
        ]
    );
    assert!(doc.criteria().all(|c| c.pattern == NotEars));
}

#[test]
fn problems_are_reported_not_fatal() {
    let text = "# Reqs

### Requirement 1: Empty

**User Story:** As a user, I want nothing.

### Requirement 2: Twice
1. The system shall A
1. The system shall B

Some prose.

1. The system shall C

### Requirement 2: Again
- The system shall D

## Acceptance Criteria
- stray one
- stray two
";
    let doc = parse_requirements(text);
    let problems: Vec<(usize, &str)> = doc
        .problems
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (
                3,
                "requirement 1 (Requirement 1) has no acceptance criteria"
            ),
            (13, "duplicate criterion id 2.1 (first at line 8)"),
            (15, "duplicate requirement id 2 (first at line 7)"),
            (16, "duplicate criterion id 2.1 (first at line 8)"),
            (
                18,
                "2 acceptance criteria under this heading belong to no requirement and were not read"
            ),
        ]
    );
    // Markdown renumbering: "1. 1." is shown as 1, 2, so the second item is 2.2.
    let ids: Vec<&str> = doc.requirements[1]
        .criteria
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(ids, ["2.1", "2.2", "2.1"]);

    let empty = parse_requirements("");
    assert_eq!(empty.format, RequirementsFormat::Unknown);
    assert_eq!(empty.requirements.len(), 0);
    assert_eq!(empty.problems.len(), 1);
}

#[test]
fn code_comments_and_front_matter_are_skipped() {
    let text = "---
title: x
---
# Requirements

<!--
### Requirement 9: Commented out
1. The system shall never be read
-->

### Requirement 1: Real
```markdown
### Requirement 8: In a code block
1. The system shall never be read
```
1. The system shall be read
";
    let doc = parse_requirements(text);
    assert_eq!(doc.title.as_deref(), Some("Requirements"));
    assert_eq!(doc.linkable_ids(), ["1", "1.1"]);
    assert_eq!(doc.requirements[0].criteria[0].line, 16);
}

#[test]
fn plain_requirements_list_is_a_last_resort() {
    let doc = parse_requirements(
        "# Spec\n\n## Requirements\n\n1. Print hello\n   - exactly once\n2. Include tests\n",
    );
    assert_eq!(doc.format, RequirementsFormat::Unknown);
    let ids: Vec<&str> = doc.requirements.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(
        doc.requirements[0].criteria[0].text,
        "Print hello\n- exactly once"
    );
    assert!(doc.resolves("2"));
}

/// Markdown-ish fragments, so that generated documents reach the parser's states.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("### Requirement 1: A".to_string()),
        Just("## Requirements".to_string()),
        Just("#### Acceptance Criteria".to_string()),
        Just("**Acceptance Criteria:**".to_string()),
        Just("**User Story:** As a".to_string()),
        Just("### User Story 2 - B (Priority: P1)".to_string()),
        Just("**Acceptance Scenarios**:".to_string()),
        Just("1. WHEN x THEN the system SHALL y".to_string()),
        Just("- **FR-001**: System MUST".to_string()),
        Just("1.1 WHEN a THEN b".to_string()),
        Just("**Must**: do it:".to_string()),
        Just("   - nested".to_string()),
        Just("```".to_string()),
        Just("<!--".to_string()),
        Just("-->".to_string()),
        Just("---".to_string()),
        Just("| a | b |".to_string()),
        Just(String::new()),
        Just("### 3. Numbered".to_string()),
        Just("**R4**".to_string()),
        "\\PC{0,40}",
    ]
}

proptest! {
    #[test]
    fn parse_and_classify_never_panic(text in "\\PC*(\\r?\\n\\PC*){0,8}") {
        let doc = parse_requirements(&text);
        let _ = classify_ears(&text);
        for link in doc.linkable_ids() {
            prop_assert!(doc.resolves(&link));
        }
        let _ = doc.resolves(&text);
        let _ = doc.requirement_of(&text);
    }

    #[test]
    fn arbitrary_bytes_as_text_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let doc = parse_requirements(&text);
        let _ = classify_ears(&text);
        let _ = doc.resolves(&text);
    }

    #[test]
    fn markdown_like_documents_never_panic_and_every_id_resolves(
        lines in proptest::collection::vec(fragment(), 0..40),
        crlf in any::<bool>(),
    ) {
        let text = lines.join(if crlf { "\r\n" } else { "\n" });
        let doc = parse_requirements(&text);
        for requirement in &doc.requirements {
            prop_assert!(requirement.line >= 1);
            for criterion in &requirement.criteria {
                prop_assert!(doc.resolves(&criterion.id));
                prop_assert_eq!(criterion.pattern, classify_ears(&criterion.text));
                prop_assert!(doc.requirement_of(&criterion.id).is_some());
            }
        }
    }
}
