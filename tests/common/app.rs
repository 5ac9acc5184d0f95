//! A real server on port 0 with a fresh database, for integration tests.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use spectask::config::ServeConfig;
use spectask::store::Store;

use super::db::{Backend, TestDb};

pub struct TestApp {
    pub url: String,
    pub token: String,
    pub store: Arc<dyn Store>,
    pub agents: Arc<spectask::agents::manager::AgentManager>,
    pub implementer: Arc<spectask::orchestrator::implementation::Implementer>,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    /// A one-time sign-in link's path (`/sign-in#code=…`) for the admin token.
    pub sign_in: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    /// The database, dropped with the app that made it (a replica has none).
    _db: Option<TestDb>,
    database_url: String,
    repos: std::sync::Mutex<Vec<tempfile::TempDir>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts an app after `configure` has adjusted its config.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let db = TestDb::new(backend).await;
    let url = db.url().to_string();
    start(Some(db), &url, configure).await
}

/// A second server on `app`'s database, with a data dir of its own: a replica.
pub async fn spawn_replica_of(app: &TestApp, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
    start(None, app.database_url(), configure).await
}

async fn start(
    db: Option<TestDb>,
    database_url: &str,
    configure: impl FnOnce(&mut ServeConfig),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut config = ServeConfig::new("127.0.0.1:0", data_dir.clone());
    config.database_url = Some(database_url.to_string());
    // API tests move tasks by hand; tests of the orchestrator turn it back on.
    config.background = false;
    configure(&mut config);
    let app = spectask::app::build(&config).await.unwrap();
    let token = std::fs::read_to_string(app.token_file())
        .unwrap()
        .trim()
        .to_string();
    let store = app.store();
    let agents = app.agents();
    let implementer = app.implementer();
    let sign_in = app.sign_in_link().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(listener, async {
        rx.await.ok();
    }));
    TestApp {
        url,
        token,
        store,
        agents,
        implementer,
        data_dir,
        http: reqwest::Client::new(),
        sign_in,
        shutdown: Some(tx),
        server: Some(server),
        _dir: dir,
        _db: db,
        database_url: database_url.to_string(),
        repos: Default::default(),
    }
}

impl TestApp {
    /// Sends a request with the app's token and returns the status and JSON body
    /// (`Value::Null` when the body is empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_with(method, path, body, Some(&self.token.clone()))
            .await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The URL of the app's database.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Registers a fresh git repository as a project and returns its id.
    pub async fn project(&self) -> i64 {
        self.project_with_repo().await.0
    }

    /// Registers a fresh repository and returns the project id and its path.
    pub async fn project_with_repo(&self) -> (i64, std::path::PathBuf) {
        let repo = tempfile::tempdir().unwrap();
        git_init(repo.path());
        let (status, body) = self
            .post(
                "/api/v1/projects",
                serde_json::json!({ "path": repo.path() }),
            )
            .await;
        let path = repo.path().canonicalize().unwrap();
        self.repos.lock().unwrap().push(repo);
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (body["id"].as_i64().unwrap(), path)
    }

    pub async fn task(&self, project_id: i64, prompt: &str) -> i64 {
        let (status, body) = self
            .post(
                "/api/v1/spec-tasks",
                serde_json::json!({ "prompt": prompt, "project_id": project_id }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().unwrap()
    }

    /// Stops the server the way SIGTERM does and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

/// A git repository with one commit on `main`, as a user's project would be.
pub fn git_init(path: &std::path::Path) {
    git(path, &["init", "-q", "-b", "main", "."]);
    std::fs::write(path.join("README.md"), "# a project\n").unwrap();
    git(path, &["add", "README.md"]);
    git(path, &["commit", "-qm", "initial commit"]);
}

/// Runs git in `dir` as a test user and returns its output.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "user")
        .env("GIT_AUTHOR_EMAIL", "user@example.com")
        .env("GIT_COMMITTER_NAME", "user")
        .env("GIT_COMMITTER_EMAIL", "user@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
