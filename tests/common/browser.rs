//! Browser tests against the real binary: `spectask serve` on port 0 with a fresh
//! data dir and the scripted agent, and a `node web/tests/<script>.mjs` scenario
//! driving Debian's Chromium through playwright-core.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_spectask");
const AGENT: &str = env!("CARGO_BIN_EXE_spectask-test-agent");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A running `spectask serve`, stopped (TERM, then KILL) when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub sign_in: String,
    pub token: String,
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

/// Starts `spectask serve` on port 0 whose default agent is the scripted one, and
/// reads the address and the sign-in link it prints (waiting on its output).
pub fn serve(data_dir: &Path) -> Server {
    serve_with(data_dir, &[])
}

/// `serve` with more of `serve`'s flags after the address (e.g. `--cluster`,
/// `--database-url …`).
pub fn serve_with(data_dir: &Path, args: &[&str]) -> Server {
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(
        data_dir.join("spectask.toml"),
        format!("default_agent = \"test\"\n[agents.test]\ncommand = {AGENT:?}\n"),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env_remove("SPECTASK_BIND")
        .env_remove("SPECTASK_TOKEN")
        .env_remove("SPECTASK_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = crate::common::process::output_lines(&mut child);
    let (mut url, mut sign_in, mut printed) = (None, None, Vec::new());
    while url.is_none() || sign_in.is_none() {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "serve did not print its address and sign-in link:\n{}",
                printed.join("\n")
            );
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
    let token = std::fs::read_to_string(data_dir.join("token")).unwrap();
    Server {
        child,
        url: url.unwrap(),
        sign_in: sign_in.unwrap(),
        token: token.trim().to_string(),
    }
}

/// Fails (saying what to run) when node, playwright-core or Chromium is missing.
pub fn require_tools() {
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

/// Runs `web/tests/<script>` with node (its output goes to the test's), killing it
/// after `timeout`; whether it passed.
pub fn run_scenario(script: &str, envs: &[(&str, String)], timeout: Duration) -> bool {
    let mut child = Command::new("node")
        .arg(Path::new(ROOT).join("web/tests").join(script))
        .current_dir(ROOT)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("{script} did not finish within {timeout:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where the browser tests put their screenshots.
pub fn screenshots() -> String {
    Path::new(ROOT)
        .join("target/screenshots")
        .to_string_lossy()
        .into_owned()
}
