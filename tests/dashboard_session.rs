//! The session page in real headless Chromium against the real binary: `spectask
//! serve` on port 0 with a fresh data dir and the scripted agent as the default
//! agent, a project whose permission policy is `ask`, and `node web/tests/session.mjs`
//! driving Debian's Chromium: the transcript streams while the agent runs, a write
//! shows its diff, a permission request is answered from the page and the session
//! goes on to finish. Screenshots go to `target/screenshots/` (`session-*`).
//!
//! Needs `npm ci --prefix web` and `scripts/install-browser`; nothing is skipped when
//! they are missing: the test fails and says what to run.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::app::git;

const BIN: &str = env!("CARGO_BIN_EXE_spectask");
const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The whole browser scenario must end within this.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

struct Server {
    child: Child,
    url: String,
    sign_in: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A repository whose implementation prompt is the plan task's details, so the
/// scripted agent does what the plan's sub-items say.
fn repository(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join(".spectask")).unwrap();
    std::fs::write(repo.join(".spectask/implementation.md"), "{{details}}\n").unwrap();
    std::fs::write(repo.join("README.md"), "# a project\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);
    repo
}

/// Starts `spectask serve` on port 0 and reads the address and the sign-in link it
/// prints (waiting on its output, with a timeout).
fn serve(data_dir: &Path) -> Server {
    std::fs::write(
        data_dir.join("spectask.toml"),
        format!("default_agent = \"test\"\n[agents.test]\ncommand = {AGENT:?}\n"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env_remove("SPECTASK_BIND")
        .env_remove("SPECTASK_TOKEN")
        .env_remove("SPECTASK_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::process::output_lines(&mut child);
    let (mut url, mut sign_in, mut printed) = (None, None, Vec::new());
    while url.is_none() || sign_in.is_none() {
        let line = match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "serve did not print its address and sign-in link:\n{}",
                    printed.join("\n")
                );
            }
        };
        if let Some(rest) = line.split("is listening on ").nth(1) {
            url = Some(rest.trim().to_string());
        }
        if let Some(at) = line.find("http")
            && line[at..].contains("/sign-in#")
        {
            sign_in = Some(line[at..].split_whitespace().next().unwrap().to_string());
        }
        printed.push(line);
    }
    // Keep draining the server's output so it never blocks on a full pipe.
    std::thread::spawn(move || while lines.recv().is_ok() {});
    Server {
        child,
        url: url.unwrap(),
        sign_in: sign_in.unwrap(),
    }
}

fn require_tools() {
    let web = Path::new(ROOT).join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules is missing: run `npm ci --prefix web`"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
        "Chromium is missing: run `scripts/install-browser`"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: install Node.js 20 or newer"
    );
}

/// Runs a browser scenario with node, prints its output, and returns whether it passed.
fn run_scenario(script: &str, envs: &[(&str, String)]) -> bool {
    let mut child = Command::new("node")
        .arg(Path::new(ROOT).join("web/tests").join(script))
        .current_dir(ROOT)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + SCENARIO_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("{script} did not finish within {SCENARIO_TIMEOUT:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn session_page_in_headless_chromium() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let repo = repository(dir.path());
    let server = serve(&data_dir);
    let token = std::fs::read_to_string(data_dir.join("token")).unwrap();
    let shots = Path::new(ROOT).join("target/screenshots");
    let passed = run_scenario(
        "session.mjs",
        &[
            ("SPECTASK_URL", server.url.clone()),
            ("SPECTASK_SIGN_IN", server.sign_in.clone()),
            ("SPECTASK_TOKEN", token.trim().to_string()),
            ("SPECTASK_REPO", repo.to_string_lossy().into_owned()),
            ("SPECTASK_SCREENSHOTS", shots.to_string_lossy().into_owned()),
        ],
    );
    drop(server);
    assert!(passed, "the browser scenario failed (its output is above)");
}
