//! The agent sandbox, with real processes: a real shell confined the way an agent
//! is (every escape an agent would try, each checked on disk), and a whole run of
//! the scripted agent whose own shell tries them, whose commits still merge.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::app::{git, git_init};
use common::plan::{WAIT, approved_plan, commit_templates, drive, scripted_app, wait_status};
use spectask::agents::sandbox::{Policy, Sandbox};

/// A data dir laid out as the server lays it out, a user checkout, and task 1's
/// repository with two session worktrees.
struct Layout {
    _dir: tempfile::TempDir,
    data: PathBuf,
    repo: PathBuf,
    task: PathBuf,
    session_a: PathBuf,
    session_b: PathBuf,
    sibling: PathBuf,
    state: PathBuf,
}

async fn layout() -> Layout {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let data = root.join("data");
    let repo = root.join("checkout");
    std::fs::create_dir_all(&repo).unwrap();
    git_init(&repo);
    std::fs::write(repo.join("README.md"), "the user's file\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "initial"]);
    git(&repo, &["branch", "spectask/1-task"]);
    for (name, text) in [
        ("token", "st_admin_secret"),
        ("spectask.db", "SQLite"),
        ("spectask.toml", "[web]\n"),
    ] {
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join(name), text).unwrap();
    }
    let task = data.join("tasks/1");
    let task_repo = task.join("repo.git");
    spectask::git::ensure_task_repo(&repo, &task_repo)
        .await
        .unwrap();
    spectask::git::copy_branch(&repo, &task_repo, "spectask/1-task")
        .await
        .unwrap();
    let (session_a, session_b) = (task.join("sessions/a"), task.join("sessions/b"));
    for (path, branch) in [
        (&session_a, "spectask/1-task--a"),
        (&session_b, "spectask/1-task--b"),
    ] {
        spectask::git::add_branch_worktree(&task_repo, path, branch, "spectask/1-task")
            .await
            .unwrap();
    }
    let sibling = data.join("tasks/2/sessions/x");
    std::fs::create_dir_all(&sibling).unwrap();
    std::fs::write(sibling.join("theirs.txt"), "another task's work\n").unwrap();
    Layout {
        state: root.join("home/.agent-state"),
        _dir: dir,
        data,
        repo,
        task,
        session_a,
        session_b,
        sibling,
    }
}

fn sandbox(l: &Layout) -> Sandbox {
    Sandbox::build(&Policy {
        task_dir: l.task.clone(),
        write: vec![l.state.clone()],
        hidden: vec![l.data.clone()],
    })
    .expect("this machine's kernel has Landlock")
}

/// Runs `script` with `sh -c` in the sandbox (or not), in session a's worktree.
async fn sh(sandbox: Option<&Sandbox>, cwd: &Path, script: &str) -> (bool, String) {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(script).current_dir(cwd);
    if let Some(s) = sandbox {
        s.confine(&mut cmd);
    }
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("the command ends")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

/// Each attempt: what it tries, the script, and the file that must not change (or
/// not appear) when it is refused.
struct Attempt {
    what: &'static str,
    script: String,
    allowed: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confined_shell_writes_only_in_its_task_and_reads_no_secrets() {
    let l = layout().await;
    // This process stands for the server, which makes itself non-dumpable at start.
    spectask::agents::sandbox::protect_server();
    let sb = sandbox(&l);
    let home = dirs::home_dir().unwrap();
    let probe = format!("spectask-sandbox-probe-{}", std::process::id());
    let home_probe = home.join(&probe);
    let tmp_probe = PathBuf::from("/tmp").join(&probe);
    let (a, b, repo, data) = (
        l.session_a.display(),
        l.session_b.display(),
        l.repo.display(),
        l.data.display(),
    );
    let user_head = git(&l.repo, &["rev-parse", "main"]);
    let attempts = vec![
        Attempt { what: "write in its own session worktree", script: format!("echo ok > {a}/mine.txt"), allowed: true },
        Attempt { what: "write in another session worktree of the same task", script: format!("echo ok > {b}/shared.txt"), allowed: true },
        Attempt { what: "write in TMPDIR", script: "echo ok > \"$TMPDIR/scratch\" && test \"$TMPDIR\" = \"$(pwd)/../../tmp\" -o -n \"$TMPDIR\"".into(), allowed: true },
        Attempt { what: "write in a state folder its profile declares", script: format!("echo ok > {}/state.json", l.state.display()), allowed: true },
        Attempt { what: "mv within the task's folder", script: format!("echo m > {a}/m.txt && mkdir -p {a}/sub && mv {a}/m.txt {a}/sub/m.txt"), allowed: true },
        Attempt { what: "git commit inside its worktree", script: "git add -A && git -c user.name=agent -c user.email=a@b commit -qm 'agent work'".into(), allowed: true },
        Attempt { what: "read the user's checkout", script: format!("cat {repo}/README.md"), allowed: true },
        Attempt { what: "write to a sibling task's worktree", script: format!("echo x > {}/theirs.txt", l.sibling.display()), allowed: false },
        Attempt { what: "write to the user's checkout", script: format!("echo x > {repo}/escaped.txt"), allowed: false },
        Attempt { what: "overwrite a file in the user's checkout", script: format!("echo x > {repo}/README.md"), allowed: false },
        Attempt { what: "truncate a file in the user's checkout", script: format!("truncate -s 0 {repo}/README.md"), allowed: false },
        Attempt { what: "write to /tmp", script: format!("echo x > {}", tmp_probe.display()), allowed: false },
        Attempt { what: "write to $HOME outside the declared folders", script: format!("echo x > {}", home_probe.display()), allowed: false },
        Attempt { what: "write through a symlink pointing out", script: format!("ln -s {repo}/README.md {a}/link && echo x > {a}/link"), allowed: false },
        Attempt { what: "hard link a file from outside, then write it", script: format!("ln {repo}/README.md {a}/hard && echo x > {a}/hard"), allowed: false },
        Attempt { what: "mv a file out of the worktree", script: format!("echo y > {a}/out.txt && mv {a}/out.txt {repo}/moved.txt"), allowed: false },
        Attempt { what: "git -C <user checkout> commit", script: format!("git -C {repo} -c user.name=x -c user.email=x@y commit -q --allow-empty -m evil"), allowed: false },
        Attempt { what: "git update-ref on the user's branch", script: format!("git -C {repo} update-ref refs/heads/main $(git rev-parse HEAD)"), allowed: false },
        Attempt { what: "git checkout in the user's checkout (move HEAD)", script: format!("git -C {repo} checkout -q spectask/1-task"), allowed: false },
        Attempt { what: "read the data dir's token file", script: format!("cat {data}/token"), allowed: false },
        Attempt { what: "read spectask.db", script: format!("cat {data}/spectask.db"), allowed: false },
        Attempt { what: "read spectask.toml", script: format!("cat {data}/spectask.toml"), allowed: false },
        Attempt { what: "list the data dir", script: format!("ls {data}"), allowed: false },
        Attempt { what: "read a sibling task's worktree", script: format!("cat {}/theirs.txt", l.sibling.display()), allowed: false },
        Attempt { what: "read spectask's environment (/proc/PPID/environ)", script: "cat /proc/$PPID/environ".into(), allowed: false },
        Attempt { what: "follow spectask's open files (/proc/PPID/fd/*)", script: "n=0; for f in /proc/$PPID/fd/*; do readlink \"$f\" && n=$((n+1)); done; test $n -gt 0".into(), allowed: false },
        Attempt { what: "read spectask's memory (/proc/PPID/mem)", script: "head -c 16 /proc/$PPID/mem".into(), allowed: false },
        Attempt { what: "read the data dir through /proc/PPID/root", script: format!("cat /proc/$PPID/root{data}/token"), allowed: false },
        Attempt { what: "signal spectask (kill -0 PPID)", script: "kill -0 $PPID".into(), allowed: false },
    ];
    let mut table = vec!["| attempt | refused |".to_string(), "|---|---|".to_string()];
    let mut wrong = Vec::new();
    for attempt in &attempts {
        let (ok, out) = sh(Some(&sb), &l.session_a, &attempt.script).await;
        table.push(format!(
            "| {} | {} |",
            attempt.what,
            if ok { "no" } else { "yes" }
        ));
        if ok != attempt.allowed {
            wrong.push(format!("{}: succeeded={ok}: {out}", attempt.what));
        }
    }
    // A child that leaves with setsid (a new session, reparented to init) is still
    // confined: it reports its own exit status into TMPDIR.
    let rc = l.task.join("tmp/setsid.rc");
    let (ok, out) = sh(
        Some(&sb),
        &l.session_a,
        &format!(
            "setsid -f sh -c '(echo x > {} 2>/dev/null; echo $? > {}.part && mv {}.part {}) &'",
            tmp_probe.display(),
            rc.display(),
            rc.display(),
            rc.display()
        ),
    )
    .await;
    assert!(ok, "{out}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !rc.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the detached child never reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let detached_refused = std::fs::read_to_string(&rc).unwrap().trim() != "0";
    table.push(format!(
        "| write to /tmp from a setsid + double-forked child | {} |",
        if detached_refused { "yes" } else { "no" }
    ));
    if !detached_refused {
        wrong.push("the detached child wrote to /tmp".into());
    }
    eprintln!("{}", table.join("\n"));

    // On disk: nothing outside changed, everything inside did.
    let leaked: Vec<&Path> = [home_probe.as_path(), tmp_probe.as_path()]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    for p in &leaked {
        let _ = std::fs::remove_file(p);
    }
    assert!(leaked.is_empty(), "written outside: {leaked:?}");
    assert_eq!(
        std::fs::read_to_string(l.repo.join("README.md")).unwrap(),
        "the user's file\n"
    );
    assert_eq!(
        std::fs::read_to_string(l.sibling.join("theirs.txt")).unwrap(),
        "another task's work\n"
    );
    for gone in ["escaped.txt", "moved.txt"] {
        assert!(!l.repo.join(gone).exists(), "{gone}");
    }
    assert_eq!(
        git(&l.repo, &["rev-parse", "main"]),
        user_head,
        "the user's branch moved"
    );
    assert_eq!(
        git(&l.repo, &["symbolic-ref", "--short", "HEAD"]).trim(),
        "main"
    );
    assert!(l.session_b.join("shared.txt").exists());
    assert!(l.session_a.join("sub/m.txt").exists());
    assert_eq!(
        git(&l.session_a, &["log", "-1", "--format=%s"]).trim(),
        "agent work",
        "the agent's commit is on its session branch"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The same script unconfined does escape: the test can tell the two apart.
    let (ok, _) = sh(None, &l.session_a, &format!("cat {data}/token")).await;
    assert!(ok, "unconfined, the token file is readable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_own_shell_cannot_escape_and_its_commits_still_merge() {
    let app = scripted_app(|_| {}).await;
    let (project, repo) = app.project_with_repo().await;
    commit_templates(&repo, &[("implementation.md", "{{details}}\n")]);
    let data = app.data_dir.canonicalize().unwrap();
    let (repo_s, data_s) = (repo.display().to_string(), data.display().to_string());
    let plan = format!(
        "# Implementation Plan\n\n- [ ] 1. Escape\n  - sh echo outside > {repo_s}/escaped.txt\n  - sh cat {data_s}/token > leak.txt\n  - run touch {repo_s}/via-terminal.txt\n  - sh echo in > inside.txt && git add inside.txt && git -c user.name=agent -c user.email=a@b commit -qm agent-commit\n  - write done.txt done\n"
    );
    let id = approved_plan(&app, project, "Escape", &plan).await;
    let driver = drive(&app);
    wait_status(&app, id, "implementation_review").await;
    driver.abort();

    let (_, sessions) = app.get(&format!("/api/v1/spec-tasks/{id}/sessions")).await;
    let session = sessions.as_array().unwrap()[0]["id"].as_i64().unwrap();
    let (_, transcript) = app
        .get(&format!("/api/v1/sessions/{session}/transcript"))
        .await;
    let messages: Vec<String> = transcript
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message")
        .map(|e| e["content"].as_str().unwrap_or_default().to_string())
        .collect();
    let all = messages.join("\n");
    assert!(all.contains("Permission denied"), "{all}");
    assert!(
        !repo.join("escaped.txt").exists(),
        "the agent's shell wrote outside"
    );
    assert!(
        !repo.join("via-terminal.txt").exists(),
        "a terminal wrote outside"
    );
    let branch = format!("spectask/{id}-escape");
    let branch = git(
        &repo,
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/spectask/",
        ],
    )
    .lines()
    .find(|b| !b.contains("--"))
    .map(str::to_string)
    .unwrap_or(branch);
    let log = git(&repo, &["log", "--format=%s", &branch]);
    assert!(
        log.contains("agent-commit"),
        "the agent's own commit is merged: {log}"
    );
    assert_eq!(
        git(&repo, &["show", &format!("{branch}:inside.txt")]).trim(),
        "in"
    );
    let leak = git(&repo, &["show", &format!("{branch}:leak.txt")]);
    assert!(
        !leak.contains(&app.token) && leak.trim().is_empty(),
        "the token leaked: {leak}"
    );
    app.shutdown().await;
}
