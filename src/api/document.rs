//! What makes the OpenAPI document complete and true beyond the handlers'
//! annotations: the error answers every operation can give, the rule that text
//! holds no NUL, and the patterns (ECMA-262 regular expressions, as JSON Schema
//! reads them) for the rules the server checks in code.
//!
//! The patterns are written out character by character (no `\s`, no `.`) so every
//! regex engine reads them alike, and each matches exactly what its Rust check
//! accepts: the unit tests below hold them to it.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{OpenApi, RefOr, Response, ResponseBuilder};

/// What Rust's `char::is_whitespace` (Unicode White_Space) matches, as the inside
/// of a character class.
macro_rules! white_space {
    () => {
        r"\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}

/// Text without NUL: every string a request carries (PostgreSQL cannot store NUL).
pub const NO_NUL: &str = r"^[^\u0000]*$";

/// Text without NUL that is not blank: something is left once `str::trim` has
/// taken the whitespace off both ends.
pub const NOT_BLANK: &str = concat!(r"^[^\u0000]*[^\u0000", white_space!(), r"][^\u0000]*$");

/// A git branch name, as `domain::project::validate_branch_name` accepts it (the
/// rules of `git check-ref-format --branch`), at most 200 characters.
pub const BRANCH_NAME: &str = concat!(
    r"^(?![\s\S]*(\.\.|//|@\{|/\.|\.lock/))",
    r"(?![\s\S]*(\.lock|/|\.)$)",
    r"(?![-/.])(?!@$)",
    r"[^\u0000-\u0020\u007f-\u009f~^:?*\[\\]{1,200}$"
);

/// A folder inside the repository, as `domain::project::validate_relative_folder`
/// accepts it: relative, not starting with `./`, no `..` or `.git` part, not blank.
pub const RELATIVE_FOLDER: &str = concat!(
    r"^(?!/)(?!\.(/|$))(?![\s\S]*(^|/)\.\.(/|$))(?![\s\S]*(^|/)\.git(/|$))",
    r"[^\u0000]*[^\u0000",
    white_space!(),
    r"][^\u0000]*$"
);

/// An absolute path (a project's repository).
pub const ABSOLUTE_PATH: &str = r"^/[^\u0000]*$";

/// A shared-state key, as `domain::coordination::validate_state_key` accepts it.
pub const STATE_KEY: &str = r"^[A-Za-z0-9._:/-]{1,128}$";

/// A file name an imported spec may carry, as `orchestrator::import` accepts it.
pub const SPEC_FILE_NAME: &str = r"^(?!spec\.json$)([^/\\\u0000]*\.(md|json)|\.config\.kiro)$";

/// Adds to every operation the error answers the server gives it beyond its
/// handler's own: 401 behind the credential check; for a request body 400
/// (malformed JSON), 413 (over 1 MiB), 415 (not JSON) and 422 (fields that do not
/// fit the schema); 400 for path parameters that do not parse; 422 for a query that
/// does not. An answer the handler documents keeps its own description.
pub struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        let global_security = openapi.security.as_ref().is_some_and(|s| !s.is_empty());
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_error_answers(op, global_security);
            }
        }
    }
}

fn add_error_answers(op: &mut Operation, global_security: bool) {
    // An operation's own `security` replaces the document's; an empty requirement
    // (`{}`) means no credential is needed.
    let secured = match &op.security {
        Some(reqs) => {
            let json = serde_json::to_value(reqs).unwrap_or_default();
            json.as_array().is_some_and(|reqs| {
                !reqs.is_empty()
                    && reqs
                        .iter()
                        .all(|r| r.as_object().is_some_and(|o| !o.is_empty()))
            })
        }
        None => global_security,
    };
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let has_query = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let has_body = op.request_body.is_some();
    // An optional body (acknowledge) is read as it comes, with no content type check.
    let body_required = op
        .request_body
        .as_ref()
        .is_some_and(|b| matches!(b.required, Some(utoipa::openapi::Required::True)));
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description));
    };
    if secured {
        add(
            "401",
            "no credential, or one that is not valid (nothing changed)",
        );
    }
    if has_body {
        add("400", "the body is not well-formed JSON");
        add("413", "the body is larger than 1 MiB");
        if body_required {
            add("415", "the body is not sent as `application/json`");
        }
        add("422", "the body does not fit the schema; nothing changed");
    }
    if has_path {
        add("400", "a path parameter does not parse");
    }
    if has_query {
        add("422", "a query parameter does not fit the schema");
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// The patterns of request fields, by schema and property: what the server checks
/// in code, stated in the schema.
const FIELD_PATTERNS: &[(&str, &str, &str)] = &[
    ("CreateSpecTask", "prompt", NOT_BLANK),
    ("CreateSpecTask", "title", NOT_BLANK),
    ("SpecTaskPatch", "title", NOT_BLANK),
    ("CreateProject", "path", ABSOLUTE_PATH),
    ("CreateProject", "base_branch", BRANCH_NAME),
    ("CreateProject", "spec_folder", RELATIVE_FOLDER),
    ("ProjectSettingsPatch", "name", NOT_BLANK),
    ("ProjectSettingsPatch", "base_branch", BRANCH_NAME),
    ("ProjectSettingsPatch", "spec_folder", RELATIVE_FOLDER),
    ("PostCoordination", "message", NOT_BLANK),
    ("CreateToken", "name", NOT_BLANK),
    ("AddComment", "body", NOT_BLANK),
    ("ImportSpec", "title", NOT_BLANK),
    ("SpawnRequest", "name", NOT_BLANK),
    ("SpawnRequest", "prompt", NOT_BLANK),
    ("OpenThread", "prompt", NOT_BLANK),
    ("AnswerRequest", "answer", NOT_BLANK),
];

/// States the rules of request bodies and path parameters the handlers check in
/// code: [`FIELD_PATTERNS`], an import's file names (and its required `tasks.md`),
/// shared-state keys, the two rules that tie one field to another, and [`NO_NUL`]
/// on every other string a request carries (NUL is refused everywhere but inside
/// free JSON values, which are stored as serialized text). It works on the JSON
/// document because utoipa has no words for `if`/`then`.
pub fn rules(doc: &mut serde_json::Value) {
    use serde_json::json;
    for (schema, property, pattern) in FIELD_PATTERNS {
        let prop = doc
            .pointer_mut(&format!(
                "/components/schemas/{schema}/properties/{property}"
            ))
            .unwrap_or_else(|| panic!("the document has no {schema}.{property}"));
        prop["pattern"] = (*pattern).into();
    }
    let files = doc
        .pointer_mut("/components/schemas/ImportSpec/properties/files")
        .expect("the document has ImportSpec.files");
    files["propertyNames"] = json!({ "type": "string", "pattern": SPEC_FILE_NAME });
    files["required"] = json!(["tasks.md"]);
    let mut conditional = |name: &str, condition: serde_json::Value, then: serde_json::Value| {
        let schema = doc
            .pointer_mut(&format!("/components/schemas/{name}"))
            .unwrap_or_else(|| panic!("the document has no schema {name}"));
        schema["if"] = condition;
        schema["then"] = then;
    };
    // A broadcast goes to every session (the store refuses a receiver).
    conditional(
        "PostCoordination",
        json!({ "properties": { "kind": { "const": "broadcast" } }, "required": ["kind"] }),
        json!({ "properties": { "to_session_id": { "type": "null" } } }),
    );
    // A comment's `line_end` closes the range `line_start` opens.
    conditional(
        "AddComment",
        json!({ "properties": { "line_end": { "type": "integer" } }, "required": ["line_end"] }),
        json!({ "properties": { "line_start": { "type": "integer" } }, "required": ["line_start"] }),
    );
    // Sign-in takes exactly one of a link's code and a token.
    let sign_in = doc
        .pointer_mut("/components/schemas/SignIn")
        .expect("the document has SignIn");
    sign_in["oneOf"] = json!([
        { "required": ["code"], "properties": { "code": { "type": "string" } } },
        { "required": ["token"], "properties": { "token": { "type": "string" } } },
    ]);
    let mut bodies = Vec::new();
    let paths = doc["paths"]
        .as_object_mut()
        .expect("the document has paths");
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            if let Some(schema) = op
                .pointer("/requestBody/content/application~1json/schema/$ref")
                .and_then(|r| r.as_str())
                .and_then(|r| r.rsplit('/').next())
            {
                bodies.push(schema.to_string());
            }
            let params = op.get_mut("parameters").and_then(|p| p.as_array_mut());
            for param in params.into_iter().flatten() {
                if param["in"] != "path" {
                    continue;
                }
                if param["name"] == "key" && path.contains("/state/{key}") {
                    param["schema"]["pattern"] = STATE_KEY.into();
                }
                no_nul(&mut param["schema"]);
            }
        }
    }
    for name in bodies {
        let Some(props) = doc
            .pointer_mut(&format!("/components/schemas/{name}/properties"))
            .and_then(|p| p.as_object_mut())
        else {
            continue;
        };
        for prop in props.values_mut() {
            no_nul(prop);
            for nested in ["items", "additionalProperties"] {
                if let Some(inner) = prop.get_mut(nested) {
                    no_nul(inner);
                }
            }
        }
    }
}

/// A string schema (`"string"` or `["string", "null"]`) without a pattern gets [`NO_NUL`].
fn no_nul(schema: &mut serde_json::Value) {
    let is_string = match &schema["type"] {
        serde_json::Value::String(t) => t == "string",
        serde_json::Value::Array(ts) => ts.iter().any(|t| t == "string"),
        _ => false,
    };
    if is_string && schema.get("pattern").is_none() && schema.get("enum").is_none() {
        schema["pattern"] = NO_NUL.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{validate_branch_name, validate_relative_folder, validate_state_key};

    /// Which samples each pattern matches, as Python's `re` reads it (with `$` as the
    /// end of the string, as in ECMA-262; the patterns use nothing else the two
    /// engines read differently).
    fn python_matches(pattern: &str, samples: &[String]) -> Vec<bool> {
        let script = r#"
import json, re, sys
data = json.load(sys.stdin)
pattern = re.compile(data["pattern"].replace("$", r"\Z"))
print(json.dumps([pattern.search(s) is not None for s in data["samples"]]))
"#;
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let input = serde_json::json!({ "pattern": pattern, "samples": samples });
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn samples() -> Vec<String> {
        let mut out: Vec<String> = [
            "",
            " ",
            "main",
            "a b",
            " main",
            "main ",
            "feature/x",
            "a..b",
            "a//b",
            "/a",
            "a/",
            "a.",
            ".a",
            "-a",
            "a-",
            "a.lock",
            "a.lock/b",
            "a/.b",
            "a/b.lock",
            "@",
            "@{",
            "a@{b",
            "a@b",
            "x~",
            "x^",
            "x:",
            "x?",
            "x*",
            "x[",
            "x]",
            "x\\",
            "\u{7f}",
            "x\u{85}",
            "x\u{9f}",
            "x\u{a0}",
            "a\u{3000}",
            "\u{3000}",
            "\u{2028}",
            "a\u{2028}b",
            "\u{feff}",
            "\u{1c}",
            "\t",
            "\n",
            "a\n",
            "a\nb",
            "a\0b",
            "\0",
            "\0a",
            "specs",
            "./specs",
            ".",
            "..",
            "a/../b",
            "a/..",
            "../a",
            "a/./b",
            ".kiro/specs",
            "a/.",
            ".git",
            "a/.git",
            ".git/a",
            "a/.git/b",
            ".gitx",
            "a.git",
            "日本",
            "tasks.md",
            ".md",
            "spec.json",
            "x.json",
            ".config.kiro",
            "x.config.kiro",
            "a/b.md",
            "a\\b.md",
            "foo",
            "k:1/2-3_4.5",
            "/",
            "//",
            "/abs/path",
            "a/b/",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in [128, 129, 200, 201] {
            out.push("a".repeat(n));
            out.push("é".repeat(n));
        }
        out
    }

    fn check(name: &str, pattern: &str, rust: impl Fn(&str) -> bool) {
        let samples = samples();
        let by_pattern = python_matches(pattern, &samples);
        for (s, matched) in samples.iter().zip(by_pattern) {
            assert_eq!(matched, rust(s), "{name}: {s:?}");
        }
    }

    #[test]
    fn patterns_match_what_the_rust_checks_accept() {
        let no_nul = |s: &str| !s.contains('\0');
        check("NO_NUL", NO_NUL, no_nul);
        check("NOT_BLANK", NOT_BLANK, |s| {
            no_nul(s) && !s.trim().is_empty()
        });
        check("BRANCH_NAME", BRANCH_NAME, |s| {
            validate_branch_name(s).is_ok()
        });
        check("RELATIVE_FOLDER", RELATIVE_FOLDER, |s| {
            no_nul(s) && validate_relative_folder(s).is_ok()
        });
        check("ABSOLUTE_PATH", ABSOLUTE_PATH, |s| {
            no_nul(s) && std::path::Path::new(s).is_absolute()
        });
        check("STATE_KEY", STATE_KEY, |s| validate_state_key(s).is_ok());
        check("SPEC_FILE_NAME", SPEC_FILE_NAME, |s| {
            no_nul(s) && crate::orchestrator::import::valid_name(s)
        });
    }

    #[test]
    fn the_webhook_url_pattern_matches_what_the_server_accepts() {
        let doc = crate::api::openapi();
        let url = &doc["components"]["schemas"]["CreateWebhook"]["properties"]["url"];
        let pattern = url["pattern"].as_str().expect("the url has a pattern");
        let max = url["maxLength"].as_u64().unwrap() as usize;
        let mut samples = samples();
        for tail in [
            "",
            "/",
            "/x?y#z",
            " ",
            "/a b",
            "/\u{85}",
            "/\u{a0}",
            "/\u{2028}",
            "/\u{3000}",
            "/\u{1c}",
            "/\0",
            "/\u{7f}",
            "/\t",
            "/日本",
            ":8080/hook",
            "?q",
            "#f",
        ] {
            for head in [
                "https://a",
                "http://127.0.0.1",
                "https://",
                "http://",
                "ftp://a",
                "https:/a",
                "https://\u{a0}",
            ] {
                samples.push(format!("{head}{tail}"));
            }
        }
        samples.push(format!("https://a/{}", "é".repeat(1990)));
        samples.push(format!("https://a/{}", "é".repeat(1991)));
        let by_pattern = python_matches(pattern, &samples);
        for (s, matched) in samples.iter().zip(by_pattern) {
            let by_schema = matched && s.chars().count() <= max;
            assert_eq!(
                by_schema,
                super::super::notifications::check_url(s).is_ok(),
                "{s:?}"
            );
        }
    }
}
