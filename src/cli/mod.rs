//! The `spectask` command line: `serve` runs the server; every other command is a
//! client of a running server over HTTP.

mod client;
mod demo;
mod inbox;
mod output;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::app;
use crate::auth::ApiToken;
use crate::config::{self, FileConfig, LogFormat, ServeConfig};
use crate::domain::*;
use client::Client;

#[derive(Debug, Parser)]
#[command(
    name = "spectask",
    version,
    about = "Spec-driven, multi-session AI coding: server and CLI"
)]
pub struct Cli {
    /// Where spectask keeps its database, token and config [default: the platform data dir]
    #[arg(long, env = "SPECTASK_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The server the CLI talks to [default: the URL `serve` wrote in the data dir]
    #[arg(long, env = "SPECTASK_URL", global = true)]
    url: Option<String>,
    /// The API token [default: the token file in the data dir]
    #[arg(long, env = "SPECTASK_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    #[arg(long, env = "SPECTASK_LOG_FORMAT", global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (API; embedded SQLite unless --database-url names PostgreSQL)
    Serve {
        /// Address to listen on [default: 127.0.0.1:7420]
        #[arg(long, env = "SPECTASK_BIND")]
        bind: Option<String>,
        /// sqlite://PATH or postgres://USER@HOST/DB [default: SQLite in the data dir]
        #[arg(long, env = "SPECTASK_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// The replicas of a cluster on PostgreSQL and the tasks each runs
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Register and configure git repositories
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Create, inspect and move spec tasks through their lifecycle
    #[command(subcommand)]
    Task(TaskCmd),
    /// Print the change log (oldest first); --follow keeps printing new events
    Events {
        #[arg(long)]
        follow: bool,
        /// Only this spec task's events
        #[arg(long)]
        task: Option<i64>,
        /// Start after this event id
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long)]
        json: bool,
    },
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCmd),
    /// Agent profiles and the agent instances of spec tasks
    #[command(subcommand)]
    Agents(AgentsCmd),
    /// Work sessions: their threads and transcripts
    #[command(subcommand)]
    Session(SessionCmd),
    /// Permission requests waiting for a person (project policy `ask`)
    #[command(subcommand)]
    Permissions(PermissionsCmd),
    /// What waits for a person, across every task: specs and finished work to
    /// review, permission requests, conflicts, failures, requests from sessions
    Inbox {
        #[arg(long)]
        json: bool,
    },
    /// Webhooks: notifications POSTed to a URL (generic JSON, Slack or Discord)
    #[command(subcommand)]
    Webhook(inbox::WebhookCmd),
    /// Specs on disk: validate them without a server
    #[command(subcommand)]
    Spec(SpecCmd),
    /// Print the OpenAPI document of the API (JSON), the one the server serves at
    /// /api/v1/openapi.json; no server needed
    Openapi,
    /// Print a one-time link that signs a browser in to the dashboard, and open it
    /// in the browser when there is one
    Dashboard {
        /// Only print the link
        #[arg(long)]
        no_open: bool,
    },
    /// Speak MCP on stdio for one agent session, relaying to the server (agents
    /// start it, with SPECTASK_URL and SPECTASK_SESSION_TOKEN set; see README)
    Mcp,
    /// Run a whole task, prompt to merged work, on a sample repository with the
    /// scripted agent; then keep the server running to look around
    Demo {
        /// Exit when the run is done (0 on success) instead of serving on
        #[arg(long)]
        once: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SpecCmd {
    /// Validate a spec folder, or one tasks.md / requirements.md / spec.md: EARS
    /// patterns, the task graph, coverage; exit 1 when there are errors
    Check {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Running as one replica of several on one PostgreSQL database.
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Run as a cluster replica: spec tasks are split between the replicas on the
    /// database by leases (needs PostgreSQL; each replica its own data dir)
    #[arg(long, env = "SPECTASK_CLUSTER")]
    cluster: bool,
    /// This replica's id [default: made once and kept in the data dir]
    #[arg(long, env = "SPECTASK_REPLICA_ID", requires = "cluster")]
    replica_id: Option<String>,
    /// Milliseconds a lease lasts without a heartbeat: a dead replica's tasks are
    /// taken over this long after its last one
    #[arg(long, env = "SPECTASK_LEASE_TTL_MS", default_value_t = config::DEFAULT_LEASE_TTL_MS,
          value_parser = clap::value_parser!(u64).range(500..=3_600_000))]
    lease_ttl_ms: u64,
    /// The most spec tasks (agent processes) this replica runs at once
    #[arg(long, env = "SPECTASK_MAX_AGENTS", default_value_t = config::DEFAULT_MAX_AGENTS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    max_agents: u64,
}

#[derive(Debug, Subcommand)]
enum ClusterCmd {
    /// Replicas (running, stopped or lost), the tasks each holds, their lease ages,
    /// and the tasks waiting for an owner
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AgentsCmd {
    /// Start each agent profile (or one), run `initialize`, and report what it said
    /// or why it could not (not installed, needs authentication, bad output, timeout).
    /// Runs locally; no server needed.
    Check {
        profile: Option<String>,
        /// Seconds to wait for each answer
        #[arg(long, default_value_t = 15)]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
    /// The agent instance of a spec task
    Status(IdArgs),
    /// Stop a spec task's agent (its whole process tree); it stays stopped, its
    /// sessions waiting, until `restart`
    Stop(IdArgs),
    /// Start or restart a spec task's agent (ends a stop)
    Restart(IdArgs),
    /// Emergency: stop every agent of every task; each stays stopped until `restart`
    StopAll,
}

#[derive(Debug, Subcommand)]
enum SessionCmd {
    /// A work session's transcript
    Transcript(IdArgs),
    /// Add a session to a spec task that is implementing
    Spawn {
        /// The spec task
        task: i64,
        #[arg(long)]
        name: String,
        #[arg(long)]
        prompt: String,
        /// The session it belongs under
        #[arg(long)]
        parent: Option<i64>,
        /// Task keys or `session:<id>` it waits for (repeatable)
        #[arg(long = "depends-on")]
        depends_on: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Open a new thread on a running task's agent: an ad-hoc session with its own
    /// worktree, merged like any other (skip it to discard its work)
    Open {
        /// The spec task
        task: i64,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Answer a session's question to a person (an agent's ask_person)
    Answer {
        /// The spec task
        task: i64,
        /// The request's coordination event id (see `spectask inbox`)
        event: i64,
        answer: String,
    },
    /// Retry a conflicted session (a conflict-fixing session finishes its merge) or
    /// a failed one (its task runs again in the same worktree)
    Retry(IdArgs),
    /// Skip a stuck session's task: marked done, nothing merged, dependents go on
    Skip(IdArgs),
    /// Cancel a session: its turn is cancelled and its task with it
    Cancel(IdArgs),
}

#[derive(Debug, Subcommand)]
enum PermissionsCmd {
    /// Pending requests (--all for every request)
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        task: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Answer a request with one of its options (e.g. `allow`), or --cancel it
    Answer {
        id: i64,
        option: Option<String>,
        #[arg(long, conflicts_with = "option")]
        cancel: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectCmd {
    /// Register the git repository at PATH
    Add {
        path: PathBuf,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        base_branch: Option<String>,
        #[arg(long)]
        spec_folder: Option<String>,
        /// Verification command run before a session's work is merged
        #[arg(long)]
        verify: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Change a project's settings (only the ones given)
    Set {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        base_branch: Option<String>,
        #[arg(long)]
        spec_folder: Option<String>,
        /// Verification command ("" clears it)
        #[arg(long)]
        verify: Option<String>,
        #[arg(long)]
        planning_wip_limit: Option<i64>,
        #[arg(long)]
        implementation_wip_limit: Option<i64>,
        #[arg(long)]
        max_parallel_sessions: Option<i64>,
        /// How agents' permission requests are answered: auto, ask or deny
        #[arg(long)]
        permission_policy: Option<String>,
        /// What a merge conflict gets: fix (a conflict-fixing session) or wait (for a person)
        #[arg(long)]
        conflict_policy: Option<String>,
        /// Whether a finished plan waits in implementation_review (true) or goes to done (false)
        #[arg(long)]
        review_implementation: Option<bool>,
        /// Attempts a session gets after agent crashes before it fails
        #[arg(long)]
        max_attempts: Option<i64>,
        /// What a session that changed nothing gets: done (it completes) or review (a person decides)
        #[arg(long)]
        empty_session: Option<String>,
        /// Seconds a turn may take before it is cancelled and counts as a failed attempt
        #[arg(long)]
        turn_timeout: Option<i64>,
        /// Seconds the verification command may run before it counts as failed
        #[arg(long)]
        verify_timeout: Option<i64>,
        /// Whether agents run confined by the kernel: required, best_effort or off
        #[arg(long)]
        sandbox: Option<String>,
        /// How many sessions one spec task's agents may spawn with their tools
        #[arg(long)]
        max_spawned_sessions: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TaskCmd {
    /// Create a spec task from a prompt
    Create {
        prompt: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// low, medium, high or critical
        #[arg(long)]
        priority: Option<Priority>,
        /// feature, bugfix or refactor
        #[arg(long = "type")]
        task_type: Option<TaskType>,
        /// Project id (needed when several are registered)
        #[arg(long)]
        project: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        status: Option<SpecTaskStatus>,
        #[arg(long)]
        project: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    Show(IdArgs),
    /// Change a task's title, description or priority
    Update {
        id: i64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        priority: Option<Priority>,
        #[arg(long)]
        json: bool,
    },
    /// Implementation progress: each task with its sub-items, sessions, overall
    Progress(IdArgs),
    /// The implementation report: sessions, attempts, durations, merges, usage, commits
    Report(IdArgs),
    /// Live progress bars (one per session at work, one overall) until the task
    /// leaves implementation; exit 0 in implementation review or done, 1 otherwise
    Watch {
        id: i64,
        /// Print each progress snapshot as a JSON line instead
        #[arg(long)]
        json: bool,
    },
    /// The latest spec version (or --version N): documents, validation report, comments
    Review {
        id: i64,
        #[arg(long)]
        version: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Import a Kiro (.kiro/specs/NAME) or spec-kit (specs/NNN-name) folder as a task
    /// in spec review, with the spec as version 1
    Import {
        path: PathBuf,
        #[arg(long)]
        project: Option<i64>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        json: bool,
    },
    StartPlanning(IdArgs),
    Approve(IdArgs),
    RequestChanges(IdArgs),
    Reject(IdArgs),
    Cancel(IdArgs),
    Retry(IdArgs),
}

#[derive(Debug, Args)]
struct IdArgs {
    id: i64,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Create a token; it is printed once
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Revoke {
        id: i64,
    },
}

/// The entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Started by an agent inside its sandbox, which cannot read the data dir (nor
    // should it): nothing but the environment is read.
    if let Command::Mcp = cli.command {
        return crate::mcp::bridge::run().await;
    }
    let data_dir = cli
        .data_dir
        .clone()
        .unwrap_or_else(config::default_data_dir);
    let file = FileConfig::load(&data_dir)?;
    let log_format = cli.log_format.or(file.log_format).unwrap_or_default();
    match cli.command {
        Command::Serve {
            bind,
            database_url,
            cluster,
        } => {
            init_logging(log_format, "info");
            let bind = bind
                .or(file.bind)
                .unwrap_or_else(|| config::DEFAULT_BIND.to_string());
            let mut config = ServeConfig::new(&bind, data_dir);
            config.database_url = database_url.or(file.database_url);
            config.agent_profiles = file.agents;
            config.web = config::WebSettings::from_env()?;
            config.webhooks = config::WebhookSettings::from_env()?;
            if let Some(default) = file.default_agent {
                config.default_agent = default;
            }
            if cluster.cluster {
                let replica_id = match cluster.replica_id {
                    Some(id) if config::valid_replica_id(&id) => id,
                    Some(id) => anyhow::bail!(
                        "--replica-id: 1 to 64 letters, digits, '-', '_' or '.', not {id:?}"
                    ),
                    None => config::replica_id(&config.data_dir)?,
                };
                config.cluster = Some(config::ClusterSettings {
                    replica_id,
                    lease_ttl: std::time::Duration::from_millis(cluster.lease_ttl_ms),
                    max_agents: cluster.max_agents as usize,
                });
            }
            serve(config).await
        }
        Command::Spec(SpecCmd::Check { path, json }) => spec_check(&path, json),
        Command::Openapi => {
            print!("{}", crate::api::openapi_json());
            Ok(())
        }
        Command::Demo { once } => {
            init_logging(log_format, "warn");
            demo::run(once).await
        }
        Command::Agents(AgentsCmd::Check {
            profile,
            timeout,
            json,
        }) => {
            init_logging(log_format, "warn");
            check_agents(&file, &data_dir, profile, timeout, json).await
        }
        command => {
            init_logging(log_format, "warn");
            let client = connect_client(cli.url.or(file.url), cli.token, &data_dir)?;
            match command {
                Command::Project(cmd) => project(&client, cmd).await,
                Command::Cluster(ClusterCmd::Status { json }) => {
                    cluster_status(&client, json).await
                }
                Command::Task(cmd) => task(&client, cmd).await,
                Command::Events {
                    follow,
                    task,
                    after,
                    json,
                } => events(&client, follow, task, after, json).await,
                Command::Token(cmd) => token(&client, cmd).await,
                Command::Inbox { json } => inbox::inbox(&client, json).await,
                Command::Webhook(cmd) => inbox::webhook(&client, cmd).await,
                Command::Dashboard { no_open } => dashboard(&client, no_open).await,
                Command::Agents(cmd) => agents(&client, cmd).await,
                Command::Session(SessionCmd::Transcript(a)) => transcript(&client, a).await,
                Command::Session(SessionCmd::Spawn {
                    task,
                    name,
                    prompt,
                    parent,
                    depends_on,
                    json,
                }) => {
                    let body = json!({ "name": name, "prompt": prompt, "parent_id": parent, "depends_on": depends_on });
                    let s: WorkSession = client
                        .post(&format!("/spec-tasks/{task}/sessions"), &body)
                        .await?;
                    if json {
                        return output::json(&s);
                    }
                    println!(
                        "spawned session {} ({}) in task {task}; it starts when its dependencies are done",
                        s.id, s.name
                    );
                    Ok(())
                }
                Command::Session(SessionCmd::Open {
                    task,
                    prompt,
                    name,
                    json,
                }) => {
                    let body = json!({ "prompt": prompt, "name": name });
                    let s: WorkSession = client
                        .post(&format!("/spec-tasks/{task}/threads"), &body)
                        .await?;
                    if json {
                        return output::json(&s);
                    }
                    println!(
                        "opened session {} ({}) on task {task}'s agent; its work is merged like any session's",
                        s.id, s.name
                    );
                    Ok(())
                }
                Command::Session(SessionCmd::Answer {
                    task,
                    event,
                    answer,
                }) => {
                    let _: serde_json::Value = client
                        .post(
                            &format!("/spec-tasks/{task}/coordination/{event}/answer"),
                            &json!({ "answer": answer }),
                        )
                        .await?;
                    println!("answered request {event}");
                    Ok(())
                }
                Command::Session(cmd) => session_decision(&client, cmd).await,
                Command::Permissions(cmd) => permissions(&client, cmd).await,
                Command::Serve { .. }
                | Command::Spec(_)
                | Command::Mcp
                | Command::Openapi
                | Command::Demo { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// `spectask cluster status`: one block per replica, its tasks and lease ages.
async fn cluster_status(client: &Client, json: bool) -> anyhow::Result<()> {
    let status: crate::api::cluster::ClusterStatus = client.get("/cluster").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    match &status.replica {
        Some(me) => println!(
            "this server: replica {me} (leases of {} ms)",
            status.lease_ttl_ms.unwrap_or_default()
        ),
        None => println!("this server runs alone (not started with --cluster)"),
    }
    for r in &status.replicas {
        println!(
            "{}  {}  {}  heartbeat {} ms ago  {}/{} tasks",
            r.id,
            r.state,
            r.address,
            r.heartbeat_age_ms,
            r.tasks.len(),
            r.max_agents
        );
        for l in &r.tasks {
            println!(
                "    task {:<6} fence {:<4} held {} s  lease expires in {} ms",
                l.spec_task_id,
                l.fence,
                l.held_ms / 1000,
                l.expires_in_ms
            );
        }
    }
    if !status.unowned.is_empty() {
        let ids: Vec<String> = status.unowned.iter().map(SpecTaskId::to_string).collect();
        println!("waiting for an owner: tasks {}", ids.join(", "));
    }
    Ok(())
}

/// Prints a fresh sign-in link and, unless told not to or there is no display,
/// opens it in the browser.
async fn dashboard(client: &Client, no_open: bool) -> anyhow::Result<()> {
    let link: crate::api::SignInLink = client.post("/auth/sign-in-links", &json!({})).await?;
    let url = format!("{}{}", client.base(), link.path);
    println!("{url}");
    println!(
        "(signs one browser in, once, until {})",
        link.expires_at.format("%Y-%m-%d %H:%M UTC")
    );
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .or_else(|| display.then(|| "xdg-open".to_string()));
    if let (false, Some(opener)) = (no_open, opener) {
        // The link is an argument, never a logged URL; a browser that fails to start
        // leaves the printed link to copy.
        let started = std::process::Command::new(&opener)
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if started.is_err() {
            eprintln!("could not start {opener}: open the link yourself");
        }
    }
    Ok(())
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let shutdown = app::shutdown_signal().context("installing signal handlers")?;
    let app = app::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(&config.bind)
        .await
        .with_context(|| format!("listening on {}", config.bind))?;
    let url = format!("http://{}", listener.local_addr()?);
    std::fs::write(config.data_dir.join(config::URL_FILE), format!("{url}\n"))
        .context("writing the URL file")?;
    let sign_in = app.sign_in_link().await?;
    println!("spectask is listening on {url}");
    println!("  dashboard: {url}{sign_in}");
    println!("             (a one-time sign-in link; `spectask dashboard` prints a fresh one)");
    println!(
        "  API token: {} (send it as `Authorization: Bearer <token>`)",
        app.token_file().display()
    );
    println!("  data dir:  {}", config.data_dir.display());
    tracing::info!(%url, "listening");
    app.run(listener, shutdown).await
}

fn connect_client(
    url: Option<String>,
    token: Option<String>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Client> {
    let url = url
        .or_else(|| std::fs::read_to_string(data_dir.join(config::URL_FILE)).ok())
        .map(|u| u.trim().to_string())
        .unwrap_or_else(|| format!("http://{}", config::DEFAULT_BIND));
    let token_file = data_dir.join(config::TOKEN_FILE);
    let token = match token {
        Some(t) => t,
        None => std::fs::read_to_string(&token_file).with_context(|| {
            format!(
                "no API token: pass --token or SPECTASK_TOKEN, or run `spectask serve` once to create {}",
                token_file.display()
            )
        })?,
    };
    Ok(Client::new(&url, &token))
}

/// The fields of a JSON object that were given (not null): a PATCH body that
/// changes only what the person named.
fn given(fields: Value) -> serde_json::Map<String, Value> {
    match fields {
        Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => serde_json::Map::new(),
    }
}

fn opt(v: &Option<impl ToString>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

fn print_projects(projects: &[Project]) {
    let rows: Vec<Vec<String>> = projects
        .iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.name.clone(),
                p.settings.base_branch.clone(),
                p.settings.spec_folder.clone(),
                p.path.clone(),
            ]
        })
        .collect();
    output::table(&["ID", "NAME", "BASE", "SPECS", "PATH"], &rows);
}

async fn project(client: &Client, cmd: ProjectCmd) -> anyhow::Result<()> {
    match cmd {
        ProjectCmd::Add {
            path,
            name,
            base_branch,
            spec_folder,
            verify,
            json,
        } => {
            let abs = std::fs::canonicalize(&path)
                .with_context(|| format!("{} does not exist", path.display()))?;
            let body = json!({
                "path": abs,
                "name": name,
                "base_branch": base_branch,
                "spec_folder": spec_folder,
                "verification_command": verify,
            });
            let p: Project = client.post("/projects", &body).await?;
            if json {
                return output::json(&p);
            }
            println!("registered project {} ({}) at {}", p.id, p.name, p.path);
            Ok(())
        }
        ProjectCmd::List { json } => {
            let projects: Vec<Project> = client.get("/projects").await?;
            if json {
                return output::json(&projects);
            }
            print_projects(&projects);
            Ok(())
        }
        ProjectCmd::Show { id, json } => {
            let p: Project = client.get(&format!("/projects/{id}")).await?;
            if json {
                return output::json(&p);
            }
            let s = &p.settings;
            for (k, v) in [
                ("id", p.id.to_string()),
                ("name", p.name.clone()),
                ("path", p.path.clone()),
                ("base branch", s.base_branch.clone()),
                ("spec folder", s.spec_folder.clone()),
                ("verification", opt(&s.verification_command)),
                ("planning WIP limit", opt(&s.planning_wip_limit)),
                ("implementation WIP limit", opt(&s.implementation_wip_limit)),
                ("max parallel sessions", s.max_parallel_sessions.to_string()),
                ("permission policy", s.permission_policy.to_string()),
                ("on conflict", s.conflict_policy.to_string()),
                ("review implementation", s.review_implementation.to_string()),
                ("max attempts", s.max_attempts.to_string()),
                ("empty session", s.empty_session.to_string()),
                ("turn timeout", format!("{} s", s.turn_timeout_secs)),
                ("verify timeout", format!("{} s", s.verify_timeout_secs)),
                ("sandbox", s.sandbox.to_string()),
                ("max spawned sessions", s.max_spawned_sessions.to_string()),
            ] {
                println!("{k:<25} {v}");
            }
            Ok(())
        }
        ProjectCmd::Set {
            id,
            name,
            base_branch,
            spec_folder,
            verify,
            planning_wip_limit,
            implementation_wip_limit,
            max_parallel_sessions,
            permission_policy,
            conflict_policy,
            review_implementation,
            max_attempts,
            empty_session,
            turn_timeout,
            verify_timeout,
            sandbox,
            max_spawned_sessions,
            json,
        } => {
            let mut body = given(json!({
                "sandbox": sandbox,
                "max_spawned_sessions": max_spawned_sessions,
                "empty_session": empty_session,
                "turn_timeout_secs": turn_timeout,
                "verify_timeout_secs": verify_timeout,
                "permission_policy": permission_policy,
                "conflict_policy": conflict_policy,
                "review_implementation": review_implementation,
                "max_attempts": max_attempts,
                "name": name,
                "base_branch": base_branch,
                "spec_folder": spec_folder,
                "planning_wip_limit": planning_wip_limit,
                "implementation_wip_limit": implementation_wip_limit,
                "max_parallel_sessions": max_parallel_sessions,
            }));
            // An empty --verify clears the command, which the API spells `null`.
            if let Some(v) = verify {
                let v = if v.is_empty() { Value::Null } else { json!(v) };
                body.insert("verification_command".into(), v);
            }
            let p: Project = client
                .send(
                    reqwest::Method::PATCH,
                    &format!("/projects/{id}"),
                    Some(&Value::Object(body)),
                )
                .await?;
            if json {
                return output::json(&p);
            }
            println!("updated project {} ({})", p.id, p.name);
            Ok(())
        }
    }
}

fn print_task(t: &SpecTask) {
    let status = match (&t.failed_phase, &t.failure_reason) {
        (Some(phase), Some(reason)) => format!("{} (in {phase}: {reason})", t.status),
        _ => t.status.to_string(),
    };
    for (k, v) in [
        ("id", t.id.to_string()),
        ("title", t.title.clone()),
        ("status", status),
        ("project", t.project_id.to_string()),
        ("priority", t.priority.to_string()),
        ("type", t.task_type.to_string()),
        ("branch", t.branch.clone()),
        ("created", t.created_at.to_rfc3339()),
        ("updated", t.updated_at.to_rfc3339()),
    ] {
        println!("{k:<9} {v}");
    }
    if !t.description.is_empty() {
        println!("\n{}", t.description);
    }
    println!("\nprompt:\n{}", t.prompt);
}

async fn task(client: &Client, cmd: TaskCmd) -> anyhow::Result<()> {
    let (path, json, verb) = match cmd {
        TaskCmd::Create {
            prompt,
            title,
            description,
            priority,
            task_type,
            project,
            json,
        } => {
            let body = json!({
                "prompt": prompt,
                "title": title,
                "description": description,
                "priority": priority,
                "type": task_type,
                "project_id": project,
            });
            let t: SpecTask = client.post("/spec-tasks", &body).await?;
            if json {
                return output::json(&t);
            }
            println!(
                "created task {}: {} [{}] on branch {}",
                t.id, t.title, t.status, t.branch
            );
            return Ok(());
        }
        TaskCmd::List {
            status,
            project,
            limit,
            json,
        } => {
            let mut query = format!("/spec-tasks?limit={limit}");
            if let Some(s) = status {
                query.push_str(&format!("&status={s}"));
            }
            if let Some(p) = project {
                query.push_str(&format!("&project={p}"));
            }
            let page: Value = client.get(&query).await?;
            if json {
                return output::json(&page);
            }
            let tasks: Vec<SpecTask> = serde_json::from_value(page["items"].clone())?;
            let rows: Vec<Vec<String>> = tasks
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.status.to_string(),
                        t.priority.to_string(),
                        t.project_id.to_string(),
                        output::clip(&t.title, 60),
                    ]
                })
                .collect();
            output::table(&["ID", "STATUS", "PRIORITY", "PROJECT", "TITLE"], &rows);
            return Ok(());
        }
        TaskCmd::Show(IdArgs { id, json }) => {
            let t: SpecTask = client.get(&format!("/spec-tasks/{id}")).await?;
            if json {
                return output::json(&t);
            }
            print_task(&t);
            // What waits for a person, so nothing that needs one goes unseen.
            let overview: Value = client.get(&format!("/spec-tasks/{id}/overview")).await?;
            let needs = overview["needs_person"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !needs.is_empty() {
                println!("\nneeds you:");
                for n in needs {
                    println!("  - {}", n["message"].as_str().unwrap_or(""));
                }
            }
            return Ok(());
        }
        TaskCmd::Update {
            id,
            title,
            description,
            priority,
            json,
        } => {
            let body =
                given(json!({ "title": title, "description": description, "priority": priority }));
            let t: SpecTask = client
                .send(
                    reqwest::Method::PATCH,
                    &format!("/spec-tasks/{id}"),
                    Some(&Value::Object(body)),
                )
                .await?;
            if json {
                return output::json(&t);
            }
            println!("updated task {}: {}", t.id, t.title);
            return Ok(());
        }
        TaskCmd::Review { id, version, json } => return review(client, id, version, json).await,
        TaskCmd::Report(IdArgs { id, json }) => {
            let r: crate::orchestrator::implementation::FinalReport =
                client.get(&format!("/spec-tasks/{id}/report")).await?;
            if json {
                return output::json(&r);
            }
            print!(
                "{}",
                crate::orchestrator::implementation::render_markdown(&r)
            );
            return Ok(());
        }
        TaskCmd::Progress(IdArgs { id, json }) => {
            let p: crate::orchestrator::progress::Progress =
                client.get(&format!("/spec-tasks/{id}/progress")).await?;
            if json {
                return output::json(&p);
            }
            for line in watch::render(&p) {
                println!("{line}");
            }
            if !p.tasks.is_empty() {
                println!();
            }
            let rows: Vec<Vec<String>> = p
                .tasks
                .iter()
                .map(|t| {
                    let subs: Vec<String> = t
                        .sub_items
                        .iter()
                        .map(|i| format!("{}{}", i.key, if i.done { "✓" } else { "" }))
                        .collect();
                    vec![
                        t.key.clone(),
                        t.status.to_string(),
                        format!("{}/{}", t.sub_items_done, t.sub_items_total),
                        output::clip(&t.title, 40),
                        subs.join(" "),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                output::table(&["KEY", "STATUS", "SUB", "TITLE", "SUB-ITEMS"], &rows);
            }
            return Ok(());
        }
        TaskCmd::Watch { id, json } => return watch::watch(client, id, json).await,
        TaskCmd::Import {
            path,
            project,
            title,
            json,
        } => return import(client, &path, project, title, json).await,
        TaskCmd::StartPlanning(a) => (
            format!("/spec-tasks/{}/start-planning", a.id),
            a.json,
            "start-planning",
        ),
        TaskCmd::Approve(a) => (format!("/spec-tasks/{}/approve", a.id), a.json, "approve"),
        TaskCmd::RequestChanges(a) => (
            format!("/spec-tasks/{}/request-changes", a.id),
            a.json,
            "request-changes",
        ),
        TaskCmd::Reject(a) => (format!("/spec-tasks/{}/reject", a.id), a.json, "reject"),
        TaskCmd::Cancel(a) => (format!("/spec-tasks/{}/cancel", a.id), a.json, "cancel"),
        TaskCmd::Retry(a) => (format!("/spec-tasks/{}/retry", a.id), a.json, "retry"),
    };
    let t: SpecTask = client.post(&path, &json!({})).await?;
    if json {
        return output::json(&t);
    }
    println!("{verb}: task {} is now {}", t.id, t.status);
    Ok(())
}

async fn events(
    client: &Client,
    follow: bool,
    task: Option<i64>,
    mut after: i64,
    json: bool,
) -> anyhow::Result<()> {
    loop {
        // --follow long-polls: the server answers as soon as something happens.
        let wait = if follow { 25 } else { 0 };
        let mut path = format!("/events?after={after}&limit=1000&wait={wait}");
        if let Some(t) = task {
            path.push_str(&format!("&spec_task={t}"));
        }
        let page: Value = client.get(&path).await?;
        let items: Vec<Event> = serde_json::from_value(page["items"].clone())?;
        for e in &items {
            if json {
                println!("{}", serde_json::to_string(e)?);
            } else {
                println!(
                    "#{:<6} {}  {:<32} task={:<5} {:<9} {}",
                    e.id,
                    e.created_at.format("%Y-%m-%d %H:%M:%S"),
                    e.kind,
                    opt(&e.spec_task_id),
                    e.actor,
                    e.data
                );
            }
        }
        after = page["next_after"].as_i64().unwrap_or(after);
        if !follow {
            return Ok(());
        }
    }
}

async fn token(client: &Client, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { name, json } => {
            let created: Value = client.post("/tokens", &json!({ "name": name })).await?;
            if json {
                return output::json(&created);
            }
            println!(
                "created token {} ({name}). It is shown only this once:",
                created["id"]
            );
            println!("{}", created["token"].as_str().unwrap_or_default());
        }
        TokenCmd::List { json } => {
            let tokens: Vec<ApiToken> = client.get("/tokens").await?;
            if json {
                return output::json(&tokens);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        t.revoked_at.map_or("active".into(), |r| {
                            format!("revoked {}", r.format("%Y-%m-%d %H:%M"))
                        }),
                    ]
                })
                .collect();
            output::table(&["ID", "NAME", "CREATED", "STATE"], &rows);
        }
        TokenCmd::Revoke { id } => {
            let t: ApiToken = client
                .post(&format!("/tokens/{id}/revoke"), &json!({}))
                .await?;
            println!("revoked token {} ({})", t.id, t.name);
        }
    }
    Ok(())
}

async fn check_agents(
    file: &FileConfig,
    data_dir: &std::path::Path,
    only: Option<String>,
    timeout: u64,
    json: bool,
) -> anyhow::Result<()> {
    use crate::agents::{check, profile};
    let all = profile::profiles(&file.agents);
    let chosen: Vec<(&String, &profile::AgentProfile)> = match &only {
        Some(name) => match all.get_key_value(name) {
            Some(found) => vec![found],
            None => anyhow::bail!(
                "unknown agent profile {name:?}; known: {}",
                all.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        },
        None => all.iter().collect(),
    };
    let mut reports = Vec::new();
    for (name, p) in chosen {
        let hidden = [data_dir.to_path_buf()];
        reports.push(check::check(name, p, std::time::Duration::from_secs(timeout), &hidden).await);
    }
    if json {
        output::json(&reports)?;
    } else {
        for r in &reports {
            match (&r.agent, &r.error) {
                (Some(a), None) => {
                    let yes = |b: bool| if b { "yes" } else { "no" };
                    println!(
                        "{:<10} ok: {} {} (protocol {}) [{}]",
                        r.profile,
                        a.name.as_deref().unwrap_or("(unnamed)"),
                        a.version.as_deref().unwrap_or("(no version)"),
                        a.protocol_version,
                        r.command,
                    );
                    println!(
                        "{:<10} session/load: {}; MCP over HTTP: {}; images: {}",
                        "",
                        yes(r.load_session),
                        yes(r.mcp_http),
                        yes(r.images)
                    );
                    println!("{:<10} capabilities: {}", "", a.capabilities);
                }
                (_, Some(e)) => println!("{:<10} {}: {e} [{}]", r.profile, r.status, r.command),
                (None, None) => println!("{:<10} {}", r.profile, r.status),
            }
            println!(
                "{:<10} state folders: {}",
                "",
                if r.state_folders.is_empty() {
                    "(none declared)".to_string()
                } else {
                    r.state_folders.join(", ")
                }
            );
            println!("{:<10} sandbox: {}", "", r.sandbox);
        }
    }
    if only.is_some() && reports.iter().any(|r| r.status != "ok") {
        anyhow::bail!("the agent check failed");
    }
    Ok(())
}

async fn agents(client: &Client, cmd: AgentsCmd) -> anyhow::Result<()> {
    if let AgentsCmd::StopAll = cmd {
        let answer: Value = client.post("/agents/stop-all", &json!({})).await?;
        println!(
            "stopped {} agents; each stays stopped until `spectask agents restart <task>`",
            answer["stopped"]
        );
        return Ok(());
    }
    let (path, json, post) = match cmd {
        AgentsCmd::Status(a) => (format!("/spec-tasks/{}/agent", a.id), a.json, false),
        AgentsCmd::Stop(a) => (format!("/spec-tasks/{}/agent/stop", a.id), a.json, true),
        AgentsCmd::Restart(a) => (format!("/spec-tasks/{}/agent/restart", a.id), a.json, true),
        AgentsCmd::Check { .. } | AgentsCmd::StopAll => {
            unreachable!("check runs locally; stop-all is answered above")
        }
    };
    let instance: Option<AgentInstance> = if post {
        client.post(&path, &json!({})).await?
    } else {
        client.get(&path).await?
    };
    let Some(instance) = instance else {
        if json {
            return output::json(&instance);
        }
        println!("the spec task has not started an agent yet");
        return Ok(());
    };
    if json {
        return output::json(&instance);
    }
    for (k, v) in [
        ("spec task", instance.spec_task_id.to_string()),
        ("profile", instance.profile.clone()),
        ("status", instance.status.to_string()),
        (
            "agent",
            format!(
                "{} {}",
                opt(&instance.agent_name),
                instance.agent_version.clone().unwrap_or_default()
            ),
        ),
        ("pid", opt(&instance.pid)),
        ("restarts", instance.restarts.to_string()),
        (
            "cpu",
            instance
                .cpu_percent
                .map_or("-".into(), |c| format!("{c:.1}%")),
        ),
        (
            "memory",
            instance
                .rss_bytes
                .map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
        ),
        ("last error", opt(&instance.last_error)),
    ] {
        println!("{k:<10} {v}");
    }
    Ok(())
}

async fn transcript(client: &Client, args: IdArgs) -> anyhow::Result<()> {
    let entries: Vec<TranscriptEntry> = client
        .get(&format!("/sessions/{}/transcript", args.id))
        .await?;
    if args.json {
        return output::json(&entries);
    }
    for e in entries {
        println!("[{}] {}", e.kind, e.content);
    }
    Ok(())
}

async fn permissions(client: &Client, cmd: PermissionsCmd) -> anyhow::Result<()> {
    match cmd {
        PermissionsCmd::List { all, task, json } => {
            let mut path = String::from("/permissions?");
            if !all {
                path.push_str("status=pending&");
            }
            if let Some(t) = task {
                path.push_str(&format!("spec_task={t}"));
            }
            let list: Vec<PermissionRequest> = client.get(&path).await?;
            if json {
                return output::json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|r| {
                    let options: Vec<&str> = r
                        .options
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o.get("optionId").and_then(Value::as_str))
                        .collect();
                    vec![
                        r.id.to_string(),
                        r.status.to_string(),
                        r.spec_task_id.to_string(),
                        r.work_session_id.to_string(),
                        output::clip(&r.title, 50),
                        options.join(" / "),
                    ]
                })
                .collect();
            output::table(
                &["ID", "STATUS", "TASK", "SESSION", "TITLE", "OPTIONS"],
                &rows,
            );
        }
        PermissionsCmd::Answer { id, option, cancel } => {
            if option.is_none() && !cancel {
                anyhow::bail!("name an option (e.g. `allow`) or pass --cancel");
            }
            let r: PermissionRequest = client
                .post(
                    &format!("/permissions/{id}/answer"),
                    &json!({ "option_id": option }),
                )
                .await?;
            println!(
                "permission request {} is {} ({})",
                r.id,
                r.status,
                opt(&r.option_id)
            );
        }
    }
    Ok(())
}

/// Reads a spec from disk: a folder, or a single document named by its file name.
fn read_spec(
    path: &std::path::Path,
) -> anyhow::Result<(crate::domain::spec_report::SpecFiles, bool)> {
    use crate::domain::spec_report::SpecFiles;
    if path.is_dir() {
        return Ok((crate::orchestrator::spec_files::read(path), true));
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let doc = Some((name.clone(), text));
    let files = match name.as_str() {
        "tasks.md" => SpecFiles {
            tasks: doc,
            ..Default::default()
        },
        "requirements.md" | "spec.md" | "bugfix.md" => SpecFiles {
            requirements: doc,
            ..Default::default()
        },
        "design.md" | "plan.md" => SpecFiles {
            design: doc,
            ..Default::default()
        },
        other => anyhow::bail!(
            "{other:?}: name a spec folder, tasks.md, requirements.md, spec.md or design.md"
        ),
    };
    Ok((files, false))
}

fn spec_check(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    use crate::domain::spec_report;
    let (files, whole) = read_spec(path)?;
    let report = if whole {
        spec_report::check(&files)
    } else {
        spec_report::check_present(&files)
    };
    if json {
        output::json(&report)?;
    } else {
        print!("{}", report.render_text());
    }
    if !report.is_valid() {
        anyhow::bail!("{} error(s) in {}", report.errors.len(), path.display());
    }
    Ok(())
}

async fn review(client: &Client, id: i64, version: Option<i64>, json: bool) -> anyhow::Result<()> {
    let number = match version {
        Some(n) => n,
        None => {
            let versions: Vec<SpecVersion> = client
                .get(&format!("/spec-tasks/{id}/spec-versions"))
                .await?;
            versions
                .last()
                .map(|v| v.number)
                .ok_or_else(|| anyhow::anyhow!("spec task {id} has no spec version yet"))?
        }
    };
    let view: Value = client
        .get(&format!("/spec-tasks/{id}/spec-versions/{number}"))
        .await?;
    if json {
        return output::json(&view);
    }
    println!(
        "spec version {number} of task {id} (commit {})",
        view["version"]["commit_sha"].as_str().unwrap_or("")
    );
    for doc in view["documents"].as_array().into_iter().flatten() {
        println!("\n==> {} <==", doc["name"].as_str().unwrap_or(""));
        print!("{}", doc["raw"].as_str().unwrap_or(""));
    }
    let report: crate::domain::spec_report::SpecReport =
        serde_json::from_value(view["report"].clone())?;
    println!("\n==> validation <==");
    print!("{}", report.render_text());
    let open: Vec<&Value> = view["comments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["resolved"] == false)
        .collect();
    println!("\n==> open comments ({}) <==", open.len());
    for c in open {
        let at = match (c["line_start"].as_i64(), c["quote"].as_str()) {
            (Some(l), _) => format!("{}:{l}", c["document"].as_str().unwrap_or("")),
            (None, Some(q)) => format!("{} \"{q}\"", c["document"].as_str().unwrap_or("")),
            _ => c["document"].as_str().unwrap_or("").to_string(),
        };
        println!(
            "#{} {at} ({}): {}",
            c["id"],
            c["author"].as_str().unwrap_or(""),
            c["body"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

async fn import(
    client: &Client,
    path: &std::path::Path,
    project: Option<i64>,
    title: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let dir = std::fs::canonicalize(path)
        .with_context(|| format!("{} does not exist", path.display()))?;
    let mut files = serde_json::Map::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && (name.ends_with(".md") || name == ".config.kiro") {
            files.insert(name, Value::String(std::fs::read_to_string(entry.path())?));
        }
    }
    if !files.contains_key("tasks.md") {
        anyhow::bail!(
            "{} has no tasks.md: not a Kiro or spec-kit spec folder",
            dir.display()
        );
    }
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // spec-kit folders are numbered (`001-user-auth`): the number is not the title.
    let name = folder
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start_matches('-');
    let title = title.unwrap_or_else(|| name.replace(['-', '_'], " "));
    let body = json!({
        "project_id": project,
        "title": title,
        "source": dir.display().to_string(),
        "files": files,
    });
    let task: SpecTask = client.post("/spec-tasks/import", &body).await?;
    if json {
        return output::json(&task);
    }
    println!(
        "imported {} as task {} [{}] with spec version 1 on branch {}",
        dir.display(),
        task.id,
        task.status,
        task.branch
    );
    Ok(())
}

/// `session retry|skip|cancel ID`.
async fn session_decision(client: &Client, cmd: SessionCmd) -> anyhow::Result<()> {
    let (decision, IdArgs { id, json }) = match cmd {
        SessionCmd::Retry(a) => ("retry", a),
        SessionCmd::Skip(a) => ("skip", a),
        SessionCmd::Cancel(a) => ("cancel", a),
        other => anyhow::bail!("not a decision: {other:?}"),
    };
    let s: WorkSession = client
        .post(&format!("/sessions/{id}/{decision}"), &json!({}))
        .await?;
    if json {
        return output::json(&s);
    }
    println!(
        "session {} ({}): {decision} accepted; it is {}",
        s.id, s.name, s.status
    );
    Ok(())
}
