//! The README's newcomer path, with the real binary: `serve` prints its address and
//! the token's location; `project add`, `task create`, `task list` work against it;
//! errors exit non-zero with the server's message; SIGTERM shuts down cleanly.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_spectask");

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    printed: Vec<String>,
}

/// Starts `spectask serve` and waits (with a timeout, not a sleep) for the line that
/// says it is listening.
fn serve(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Server, String> {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(data_dir).arg("serve").args(args);
    cmd.env_remove("SPECTASK_BIND")
        .env_remove("SPECTASK_TOKEN")
        .env_remove("SPECTASK_URL");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::process::output_lines(&mut child);
    let mut printed = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let listening = line.contains("is listening on");
                printed.push(line);
                if listening {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(printed.join("\n"));
            }
        }
    }
    // Collect the lines printed right after, such as the token's location.
    while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
        printed.push(line);
        if printed.iter().any(|l| l.contains("data dir:")) {
            break;
        }
    }
    Ok(Server {
        child,
        lines,
        printed,
    })
}

fn cli(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("SPECTASK_TOKEN")
        .env_remove("SPECTASK_URL")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected a failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn terminate(mut server: Server) {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "serve exited with {status} after SIGTERM");
    drop(server.lines);
}

#[test]
fn newcomer_path_with_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = serve(&data, &["--bind", "127.0.0.1:0"], &[]).expect("serve starts");
    let out = server.printed.join("\n");
    let url_line = server
        .printed
        .iter()
        .find(|l| l.contains("is listening on http://127.0.0.1:"))
        .unwrap();
    assert!(
        !url_line.ends_with(":0"),
        "the real port is printed: {url_line}"
    );
    let token_file = data.join("token");
    assert!(
        out.contains(&format!("API token: {}", token_file.display())),
        "{out}"
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        !out.contains(token.trim()),
        "the token itself is never printed or logged"
    );

    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    common::app::git_init(&repo);
    let added = ok(cli(&data, &["project", "add", repo.to_str().unwrap()]));
    assert!(added.contains("registered project 1"), "{added}");
    let again = fails(cli(&data, &["project", "add", repo.to_str().unwrap()]));
    assert!(again.contains("already registered"), "{again}");
    let not_git = fails(cli(
        &data,
        &["project", "add", dir.path().to_str().unwrap()],
    ));
    assert!(not_git.contains("not a git repository"), "{not_git}");

    let created = ok(cli(
        &data,
        &["task", "create", "Add a login page", "--priority", "high"],
    ));
    assert!(
        created.contains("created task 1: Add a login page [backlog]"),
        "{created}"
    );
    ok(cli(
        &data,
        &[
            "task",
            "create",
            "Fix the crash",
            "--title",
            "Crash fix",
            "--type",
            "bugfix",
        ],
    ));
    let table = ok(cli(&data, &["task", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("2 ") && lines[1].contains("Crash fix"),
        "{table}"
    );
    assert!(
        lines[2].contains("Add a login page") && lines[2].contains("high"),
        "{table}"
    );
    let listed: Value = serde_json::from_str(&ok(cli(&data, &["task", "list", "--json"]))).unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);

    let refused = fails(cli(&data, &["task", "approve", "1"]));
    assert!(
        refused.contains("cannot approve a spec task that is backlog"),
        "{refused}"
    );
    let shown: Value =
        serde_json::from_str(&ok(cli(&data, &["task", "show", "1", "--json"]))).unwrap();
    assert_eq!(shown["status"], "backlog");
    // Planning starts in the background right after (and, with no agent installed
    // here, fails with that reason), so only the answer to the action is checked.
    let moved = ok(cli(&data, &["task", "start-planning", "1"]));
    assert!(moved.contains("task 1 is now planning"), "{moved}");
    let missing = fails(cli(&data, &["task", "show", "99"]));
    assert!(missing.contains("spec task 99 not found"), "{missing}");
    let events = ok(cli(&data, &["events", "--task", "1"]));
    assert!(
        events.contains("spec_task.created") && events.contains("spec_task.status_changed"),
        "{events}"
    );

    let token_out = ok(cli(&data, &["token", "create", "ci"]));
    let ci_token = token_out.lines().last().unwrap().trim().to_string();
    assert!(ci_token.starts_with("st_"));
    let with_env = Command::new(BIN)
        .args(["--data-dir", data.to_str().unwrap(), "project", "list"])
        .env("SPECTASK_TOKEN", &ci_token)
        .output()
        .unwrap();
    assert!(ok(with_env).contains("repo"));
    ok(cli(&data, &["token", "revoke", "2"]));
    let revoked = Command::new(BIN)
        .args(["--data-dir", data.to_str().unwrap(), "project", "list"])
        .env("SPECTASK_TOKEN", &ci_token)
        .output()
        .unwrap();
    assert!(fails(revoked).contains("invalid credential"));

    terminate(server);
    let down = fails(cli(&data, &["task", "list"]));
    assert!(down.contains("cannot reach spectask"), "{down}");

    // A restart keeps the data and the token.
    let server = serve(&data, &["--bind", "127.0.0.1:0"], &[]).expect("serve restarts");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);
    let listed: Value = serde_json::from_str(&ok(cli(&data, &["task", "list", "--json"]))).unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    terminate(server);
}

#[test]
fn flags_over_environment_over_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("spectask.toml"), "bind = \"not-an-address\"\n").unwrap();
    // The file is read: its bad address is used when nothing overrides it.
    let err = serve(&data, &[], &[])
        .err()
        .expect("a bad bind address fails");
    assert!(err.contains("not-an-address"), "{err}");
    // The environment beats the file.
    let server = serve(&data, &[], &[("SPECTASK_BIND", "127.0.0.1:0")]).expect("env wins");
    terminate(server);
    // The flag beats the environment.
    let server = serve(
        &data,
        &["--bind", "127.0.0.1:0"],
        &[("SPECTASK_BIND", "also-bad")],
    )
    .expect("flag wins");
    terminate(server);
    std::fs::write(data.join("spectask.toml"), "bnid = \"typo\"\n").unwrap();
    let err = serve(&data, &["--bind", "127.0.0.1:0"], &[])
        .err()
        .expect("a typo in the file fails");
    assert!(err.contains("bnid"), "{err}");
}

#[test]
fn agents_check_reports_each_profile_or_exactly_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let agent = env!("CARGO_BIN_EXE_spectask-test-agent");
    std::fs::write(
        dir.path().join("spectask.toml"),
        format!(
            "[agents.good]\ncommand = {agent:?}\n\
             [agents.silent]\ncommand = {agent:?}\nargs = [\"--no-initialize\"]\n\
             [agents.noisy]\ncommand = {agent:?}\nargs = [\"--garbage-on-start\"]\n\
             [agents.locked]\ncommand = {agent:?}\nargs = [\"--require-auth\"]\n\
             [agents.unlocked]\ncommand = {agent:?}\nargs = [\"--require-auth\"]\nauth_method = \"test-token\"\n\
             [agents.absent]\ncommand = \"no-such-agent-xyz\"\n\
             [agents.http]\ncommand = {agent:?}\nargs = [\"--mcp-http\"]\nsandbox = {{ write = [{state:?}] }}\n",
            state = dir.path().join("agent-state").display().to_string()
        ),
    )
    .unwrap();
    let out = ok(cli(
        dir.path(),
        &["agents", "check", "--timeout", "2", "--json"],
    ));
    let reports: Vec<Value> = serde_json::from_str(&out).unwrap();
    let status = |name: &str| {
        let r = reports
            .iter()
            .find(|r| r["profile"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        (
            r["status"].as_str().unwrap().to_string(),
            r["error"].as_str().unwrap_or("").to_string(),
        )
    };
    assert_eq!(status("good").0, "ok");
    // The check runs each agent as a task would: in the kernel sandbox.
    for r in &reports {
        assert!(
            r["sandbox"]
                .as_str()
                .unwrap()
                .starts_with("confined (Landlock ABI "),
            "{r}"
        );
    }
    assert_eq!(
        reports.iter().find(|r| r["profile"] == "good").unwrap()["agent"]["name"],
        "spectask-test-agent"
    );
    assert_eq!(status("unlocked").0, "ok");
    // What it can do, from its `initialize`, and where it keeps its state.
    let report = |name: &str| reports.iter().find(|r| r["profile"] == name).unwrap();
    assert_eq!(report("good")["load_session"], true);
    assert_eq!(report("good")["mcp_http"], false);
    assert_eq!(report("http")["mcp_http"], true);
    assert_eq!(report("http")["images"], false);
    assert_eq!(
        report("http")["state_folders"],
        json!([dir.path().join("agent-state").display().to_string()])
    );
    let text = ok(cli(
        dir.path(),
        &["agents", "check", "http", "--timeout", "2"],
    ));
    assert!(
        text.contains("session/load: yes; MCP over HTTP: yes; images: no"),
        "{text}"
    );
    assert!(
        text.contains("state folders: ") && text.contains("agent-state"),
        "{text}"
    );
    assert!(text.contains("spectask-test-agent"), "{text}");
    let (s, e) = status("silent");
    assert_eq!(s, "timeout");
    assert!(e.contains("did not answer initialize within 2s"), "{e}");
    let (s, e) = status("noisy");
    assert_eq!(s, "bad_output");
    assert!(e.contains("garbage before anything"), "{e}");
    let (s, e) = status("locked");
    assert_eq!(s, "needs_authentication");
    assert!(e.contains("test-token"), "{e}");
    assert_eq!(status("absent").0, "not_installed");
    // The built-in profiles are listed too (none is installed here).
    assert_eq!(status("claude").0, "not_installed");
    let failed = fails(cli(
        dir.path(),
        &["agents", "check", "silent", "--timeout", "1"],
    ));
    assert!(failed.contains("the agent check failed"), "{failed}");
    let unknown = fails(cli(dir.path(), &["agents", "check", "nope"]));
    assert!(unknown.contains("unknown agent profile"), "{unknown}");
}

#[test]
fn demo_runs_a_task_from_prompt_to_merged_work() {
    let out = Command::new(BIN)
        .args(["demo", "--once"])
        .env_remove("SPECTASK_URL")
        .env_remove("SPECTASK_TOKEN")
        .output()
        .unwrap();
    let text = ok(out);
    assert!(
        text.contains("SCRIPTED"),
        "it says the agent is scripted:\n{text}"
    );
    assert!(
        text.contains(&format!("[{}] 100%  3/3 tasks", "#".repeat(20))),
        "{text}"
    );
    assert!(text.contains("task is now implementation_review"), "{text}");
    assert!(text.contains("merge task 3 (session"), "{text}");
}

/// The reproduction of a plan whose sessions change nothing (the scripted agent
/// with the default prompt only echoes it): with the real binary and the CLI, it
/// ends in `implementation_review`, every task ticked, with a history each and no
/// merge commit, instead of hanging in `implementing`.
#[test]
fn sessions_that_change_nothing_end_the_run_in_review() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let agent = env!("CARGO_BIN_EXE_spectask-test-agent");
    std::fs::write(
        data.join("spectask.toml"),
        format!("default_agent = \"test\"\n\n[agents.test]\ncommand = {agent:?}\n"),
    )
    .unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    common::app::git_init(&repo);
    let spec = dir.path().join("spec");
    std::fs::create_dir(&spec).unwrap();
    std::fs::write(spec.join("requirements.md"), common::spec::REQUIREMENTS).unwrap();
    std::fs::write(spec.join("design.md"), common::spec::DESIGN).unwrap();
    std::fs::write(
        spec.join("tasks.md"),
        "# Implementation Plan\n\n- [ ] 1. callbacks\n- [ ] 2. tool_calls (P)\n",
    )
    .unwrap();

    let server = serve(&data, &["--bind", "127.0.0.1:0"], &[]).expect("serve starts");
    ok(cli(&data, &["project", "add", repo.to_str().unwrap()]));
    ok(cli(&data, &["task", "import", spec.to_str().unwrap()]));
    ok(cli(&data, &["task", "approve", "1"]));
    // `task watch` exits 0 once the task is in review or done, 1 if it failed; the
    // `timeout` is the bound, not a wait.
    let watched = Command::new("timeout")
        .arg("120")
        .arg(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["task", "watch", "1"])
        .env_remove("SPECTASK_TOKEN")
        .env_remove("SPECTASK_URL")
        .output()
        .unwrap();
    assert!(
        watched.status.success(),
        "task watch: {}\n{}",
        watched.status,
        String::from_utf8_lossy(&watched.stdout)
    );
    let show: Value =
        serde_json::from_str(&ok(cli(&data, &["task", "show", "1", "--json"]))).unwrap();
    assert_eq!(show["status"], "implementation_review", "{show}");
    let branch = show["branch"].as_str().unwrap();
    let spec_dir = format!("specs/{}", show["spec_dir_name"].as_str().unwrap());
    let tasks_md = common::app::git(&repo, &["show", &format!("{branch}:{spec_dir}/tasks.md")]);
    assert!(
        tasks_md.contains("- [x] 1. callbacks") && tasks_md.contains("- [x] 2. tool_calls (P)"),
        "{tasks_md}"
    );
    let log = common::app::git(&repo, &["log", "--format=%s", branch]);
    assert!(!log.contains("merge task"), "nothing was merged:\n{log}");
    assert_eq!(log.matches("changed nothing)").count(), 2, "{log}");
    let history = common::app::git(
        &repo,
        &[
            "ls-tree",
            "--name-only",
            &format!("{branch}:{spec_dir}/history"),
        ],
    );
    assert_eq!(
        history
            .lines()
            .filter(|l| l.starts_with("session-"))
            .count(),
        2,
        "{history}"
    );
    terminate(server);
}
