//! The EARS classifier: which Easy Approach to Requirements Syntax template a
//! sentence follows, decided from its English keywords alone so that criteria
//! written in any language (with English EARS keywords) are classified the same way.
//!
//! The decision procedure, in order:
//!
//! 1. The sentence is split into words (letters and digits, case-folded). CJK
//!    ideographs and kana separate words, so `系統SHALL顯示` still yields `shall`.
//!    Leading numbers (a list's `1.` or `1.1`) are skipped.
//! 2. A sentence that opens with `Given` (or the Spanish/Portuguese `Dado`) and later
//!    says `When`/`Then` (`Cuando`/`Entonces`/`Quando`/`Então`) is a Gherkin scenario:
//!    [`EarsPattern::Gherkin`]. Gherkin describes a test, not a requirement, so it is
//!    never counted as EARS even when its `Then` says "shall".
//! 3. Without the word `shall` the sentence is [`EarsPattern::NotEars`]: EARS is
//!    defined around "shall", so MoSCoW "Must"/"Should", spec-kit's "System MUST",
//!    Portuguese "deve" and Japanese `THEN システムは…` (a `WHEN … THEN` without
//!    SHALL) are all reported rather than guessed at.
//! 4. The words before the first `shall` (the preamble) are searched for the EARS
//!    keywords `when` (event-driven), `while` (state-driven), `if` (unwanted
//!    behaviour) and `where` (optional feature), counted only where a clause starts:
//!    at the beginning or right after `,` `;` `:` (and their CJK forms). A keyword in
//!    the middle of a clause ("clicks the button while displaying…") is ordinary
//!    prose. One kind of keyword gives that pattern; two or more kinds give
//!    [`EarsPattern::Complex`] ("While …, when …, the system shall …").
//!    `THEN` is not required after `WHEN`/`IF`, so both Kiro's `WHEN … THEN the system
//!    SHALL` and the classic `When …, the system shall` are event-driven.
//! 5. With no keyword the sentence is [`EarsPattern::Ubiquitous`] ("The system shall
//!    …") unless it opens with a precondition word EARS does not have (`After`,
//!    `Before`, `Once`, `Upon`, `During`, `Until`, `Unless`, …) or its preamble holds a
//!    clause break (`After logout, the system shall`, `In dark mode, the system
//!    shall`): such a precondition is real but not in EARS form, so it is
//!    [`EarsPattern::NotEars`].

use super::EarsPattern;

/// One word of the sentence, case-folded, with whether a clause starts at it.
struct Word {
    text: String,
    clause_start: bool,
}

/// Characters that are part of a word. CJK scripts (U+2E80 and above) are left
/// out on purpose: they are written without spaces, and treating them as
/// separators lets English keywords embedded in CJK text stand on their own.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || (c.is_alphanumeric() && (c as u32) < 0x2E80)
}

/// Punctuation after which a new clause starts.
fn is_clause_break(c: char) -> bool {
    matches!(c, ',' | ';' | ':' | '，' | '、' | '；' | '：' | '。')
}

fn words(sentence: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut pending_break = true;
    for c in sentence.chars() {
        if is_word_char(c) {
            current.extend(c.to_lowercase());
            continue;
        }
        if !current.is_empty() {
            out.push(Word {
                text: std::mem::take(&mut current),
                clause_start: pending_break,
            });
            pending_break = false;
        }
        if is_clause_break(c) {
            pending_break = true;
        }
    }
    if !current.is_empty() {
        out.push(Word {
            text: current,
            clause_start: pending_break,
        });
    }
    // Skip the list numbering ("1.", "1.1", "2)") a criterion may still carry.
    let skip = out
        .iter()
        .take_while(|w| w.text.chars().all(|c| c.is_ascii_digit()))
        .count();
    out.drain(..skip);
    if let Some(first) = out.first_mut() {
        first.clause_start = true;
    }
    out
}

const GIVEN: &[&str] = &["given", "dado", "dada", "dados", "dadas"];
const GHERKIN_FOLLOW: &[&str] = &[
    "when", "then", "cuando", "entonces", "quando", "então", "entao",
];
/// Precondition words that are not EARS keywords; a sentence opening with one
/// states a condition EARS cannot express in that form.
const NON_EARS_LEADS: &[&str] = &[
    "after", "before", "once", "upon", "on", "during", "until", "unless", "whenever", "as",
    "since", "given",
];

/// Classifies one sentence; see the module documentation for the rules.
pub fn classify(sentence: &str) -> EarsPattern {
    let words = words(sentence);
    let Some(first) = words.first() else {
        return EarsPattern::NotEars;
    };
    if GIVEN.contains(&first.text.as_str())
        && words[1..]
            .iter()
            .any(|w| GHERKIN_FOLLOW.contains(&w.text.as_str()))
    {
        return EarsPattern::Gherkin;
    }
    let Some(shall) = words.iter().position(|w| w.text == "shall") else {
        return EarsPattern::NotEars;
    };
    let preamble = &words[..shall];
    let (mut event, mut state, mut unwanted, mut optional) = (false, false, false, false);
    for word in preamble.iter().filter(|w| w.clause_start) {
        match word.text.as_str() {
            "when" => event = true,
            "while" => state = true,
            "if" => unwanted = true,
            "where" => optional = true,
            _ => {}
        }
    }
    let kinds = [event, state, unwanted, optional]
        .iter()
        .filter(|k| **k)
        .count();
    if kinds > 1 {
        return EarsPattern::Complex;
    }
    if event {
        return EarsPattern::EventDriven;
    }
    if state {
        return EarsPattern::StateDriven;
    }
    if unwanted {
        return EarsPattern::UnwantedBehaviour;
    }
    if optional {
        return EarsPattern::OptionalFeature;
    }
    let opens_with_precondition =
        !preamble.is_empty() && NON_EARS_LEADS.contains(&preamble[0].text.as_str());
    let has_leading_clause = preamble.iter().skip(1).any(|w| w.clause_start);
    if opens_with_precondition || has_leading_clause {
        EarsPattern::NotEars
    } else {
        EarsPattern::Ubiquitous
    }
}
