//! A whole run, generated from one seed: the plan (tasks, dependencies, `(P)`,
//! phases), each task's agent behaviour as scripted-agent commands, the project's
//! settings, and the person actions and faults that happen while it runs.
//!
//! Everything here is a pure function of the seed. Two placeholders are filled in
//! when the run is set up: `{{spec}}` (the spec folder, relative to the repository)
//! and `{{marks}}` (where `once` markers go: outside the worktrees, `$TMPDIR`).

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// What the agent does in one plan task.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Writes a file unique to the task.
    Normal,
    /// Changes nothing (only `say`).
    Nothing,
    /// Only an untracked new file, written by the agent itself (not through ACP).
    Untracked,
    /// Only deletes a file that exists on the base branch.
    Delete,
    /// Only appends a comment to the spec's `tasks.md`.
    TasksMd,
    /// Commits its own change; with `leftover`, changes more after the commit.
    Commit { leftover: bool },
    /// Commits, then resets its branch.
    Reset(ResetKind),
    /// Writes `shared-<group>.txt`, which another task of the group writes too.
    Conflict { group: usize },
    /// Changes (`deleter == false`) or deletes a base file another task deletes
    /// (changes).
    ModifyDelete { group: usize, deleter: bool },
    /// Crashes the agent process, on every attempt or on the first only; then works.
    Crash { once: bool },
    /// Never answers, on every attempt or on the first only; then works.
    Hang { once: bool },
    /// Sleeps, then works.
    Slow { ms: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResetKind {
    /// Two commits, `reset --hard HEAD~1`: the first stays.
    OneBack,
    /// One commit, `reset --hard HEAD~1`: back to the cut point (nothing to merge).
    ToCut,
    /// No commit, `reset --hard HEAD~1`: behind the cut point (an ancestor of the
    /// task branch).
    PastCut,
}

#[derive(Debug, Clone)]
pub struct PlanTask {
    pub key: String,
    pub title: String,
    pub parallel: bool,
    pub depends: Vec<String>,
    /// 1-based phase (spec-kit plans only).
    pub phase: usize,
    pub behaviour: Behaviour,
    /// The task's sub-item lines: the agent's commands (with placeholders).
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verify {
    None,
    Pass,
    Fail,
    Megabytes,
    Hang,
}

impl Verify {
    pub fn command(self) -> Option<&'static str> {
        match self {
            Verify::None => None,
            Verify::Pass => Some("true"),
            Verify::Fail => Some("false"),
            Verify::Megabytes => Some("head -c 3000000 /dev/zero | tr '\\0' x; true"),
            Verify::Hang => Some("sleep 1000"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_parallel_sessions: i64,
    pub conflict_policy: &'static str,
    pub max_attempts: i64,
    pub review_implementation: bool,
    pub verify: Verify,
    pub empty_session: &'static str,
    pub turn_timeout_secs: i64,
    pub verify_timeout_secs: i64,
    /// Which settings go in the `POST /projects` body (the rest: a PATCH after it).
    pub at_create: Vec<&'static str>,
}

impl Settings {
    /// Every setting as a JSON object field.
    pub fn all(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("max_parallel_sessions", json!(self.max_parallel_sessions)),
            ("conflict_policy", json!(self.conflict_policy)),
            ("max_attempts", json!(self.max_attempts)),
            ("review_implementation", json!(self.review_implementation)),
            ("verification_command", json!(self.verify.command())),
            ("empty_session", json!(self.empty_session)),
            ("turn_timeout_secs", json!(self.turn_timeout_secs)),
            ("verify_timeout_secs", json!(self.verify_timeout_secs)),
        ]
    }
}

/// Something that happens at a moment of the run (after a number of events).
#[derive(Debug, Clone)]
pub enum Act {
    /// `POST /sessions/{id}/{decision}` on the `pick`-th session.
    Session { decision: &'static str, pick: u32 },
    /// `POST /spec-tasks/{id}/implementation-tasks/{key}/{decision}`.
    Task { decision: &'static str, pick: u32 },
    /// `POST /spec-tasks/{id}/cancel`.
    CancelAll,
    /// `POST /spec-tasks/{id}/sessions`.
    Spawn {
        name: String,
        lines: Vec<String>,
        depends_on: Vec<String>,
    },
    /// `POST /spec-tasks/{id}/coordination`, to the `to`-th session or to all.
    Message {
        kind: &'static str,
        to: Option<u32>,
        text: String,
    },
    /// `kill -9` of the task's agent process.
    KillAgent,
    /// SIGKILL of the server, started again on the same data.
    RestartServer,
}

#[derive(Debug, Clone)]
pub struct Timed {
    pub after_events: usize,
    /// Also wait for an event whose `data.to` is this status (`merging`,
    /// `verifying`, `prompting`...), so a fault lands in that state; it never
    /// happens if no such event comes.
    pub on: Option<&'static str>,
    pub act: Act,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub settings: Settings,
    pub speckit: bool,
    pub tasks: Vec<PlanTask>,
    /// Files of the repository's first commit: (path, content).
    pub base_files: Vec<(String, String)>,
    /// A `.spectask/conflict.md` whose fixer really resolves (takes the task
    /// branch's side); without it the default template leaves the markers.
    pub resolving_fixer: bool,
    pub timed: Vec<Timed>,
    /// Seeds the person's choices (made in the order needs come up).
    pub person_seed: u64,
}

/// The task's title; with a fresh database the task is number 1, so its spec folder
/// is known before the import (and checked against the import's answer).
pub fn title(seed: u64) -> String {
    format!("Seed {seed}")
}

/// Fills the placeholders of a plan line or document.
pub fn fill(text: &str, spec: &str, marks: &str) -> String {
    text.replace("{{spec}}", spec).replace("{{marks}}", marks)
}

fn pick_behaviour(rng: &mut StdRng) -> Behaviour {
    let table: &[(u32, fn(&mut StdRng) -> Behaviour)] = &[
        (30, |_| Behaviour::Normal),
        (7, |_| Behaviour::Nothing),
        (6, |_| Behaviour::Untracked),
        (6, |_| Behaviour::Delete),
        (5, |_| Behaviour::TasksMd),
        (8, |r| Behaviour::Commit {
            leftover: r.random_bool(0.5),
        }),
        (6, |r| {
            Behaviour::Reset(
                *[ResetKind::OneBack, ResetKind::ToCut, ResetKind::PastCut]
                    .choose(r)
                    .unwrap(),
            )
        }),
        (9, |_| Behaviour::Conflict { group: 0 }),
        (4, |_| Behaviour::ModifyDelete {
            group: 0,
            deleter: false,
        }),
        (7, |r| Behaviour::Crash {
            once: r.random_bool(0.75),
        }),
        (4, |r| Behaviour::Hang {
            once: r.random_bool(0.7),
        }),
        (8, |r| Behaviour::Slow {
            ms: r.random_range(100..=1500),
        }),
    ];
    let total: u32 = table.iter().map(|(w, _)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (w, make) in table {
        if roll < *w {
            return make(rng);
        }
        roll -= w;
    }
    unreachable!()
}

const GIT_ID: &str = "-c user.name=agent -c user.email=agent@example.com";

/// The agent commands of a behaviour for the task with file-safe name `name`.
pub fn lines_for(behaviour: &Behaviour, name: &str) -> Vec<String> {
    let mine = format!("write task-{name}.txt work of task {name}");
    let commit = |n: usize| {
        vec![
            format!("write commit-{name}-{n}.txt commit {n} of {name}"),
            "run git add -A".to_string(),
            format!("run git {GIT_ID} commit -qm agent-commit-{name}-{n}"),
        ]
    };
    match behaviour {
        Behaviour::Normal => vec![mine],
        Behaviour::Nothing => vec![format!("say nothing to change for {name}")],
        Behaviour::Untracked => vec![format!(
            "write-direct untracked-{name}.txt new file of {name}"
        )],
        Behaviour::Delete => vec![format!("run git rm -q del-{name}.txt")],
        Behaviour::TasksMd => vec![format!(
            "append-direct {{{{spec}}}}/tasks.md \\n<!-- note of task {name} -->\\n"
        )],
        Behaviour::Commit { leftover } => {
            let mut l = commit(1);
            if *leftover {
                l.push(format!("write leftover-{name}.txt left over by {name}"));
            }
            l
        }
        Behaviour::Reset(kind) => match kind {
            ResetKind::OneBack => {
                let mut l = commit(1);
                l.extend(commit(2));
                l.push("run git reset -q --hard HEAD~1".into());
                l
            }
            ResetKind::ToCut => {
                let mut l = commit(1);
                l.push("run git reset -q --hard HEAD~1".into());
                l
            }
            ResetKind::PastCut => vec!["run git reset -q --hard HEAD~1".into()],
        },
        Behaviour::Conflict { group } => {
            vec![format!("write shared-{group}.txt written by task {name}")]
        }
        Behaviour::ModifyDelete { group, deleter } => {
            if *deleter {
                vec![format!("run rm -f base-shared-{group}.txt")]
            } else {
                vec![format!(
                    "write base-shared-{group}.txt changed by task {name}"
                )]
            }
        }
        Behaviour::Crash { once } => {
            let first = if *once {
                format!("once {{{{marks}}}}/crash-{name} crash")
            } else {
                "crash".to_string()
            };
            vec![first, mine]
        }
        Behaviour::Hang { once } => {
            let first = if *once {
                format!("once {{{{marks}}}}/hang-{name} hang")
            } else {
                "hang".to_string()
            };
            vec![first, mine]
        }
        Behaviour::Slow { ms } => vec![format!("sleep {ms}"), mine],
    }
}

/// How many tasks a plan has: mostly 2..=8, sometimes up to 30.
fn plan_size(rng: &mut StdRng, max: usize) -> usize {
    let n = match rng.random_range(0..100) {
        0..=9 => 1,
        10..=79 => rng.random_range(2..=8),
        80..=92 => rng.random_range(9..=14),
        _ => rng.random_range(15..=30),
    };
    n.clamp(1, max.max(1))
}

pub fn generate(seed: u64, max_tasks: usize) -> Scenario {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = plan_size(&mut rng, max_tasks);
    let speckit = rng.random_bool(0.3);
    let phases = if speckit { rng.random_range(1..=3) } else { 1 };
    let mut tasks: Vec<PlanTask> = Vec::new();
    let mut base_files = vec![("README.md".to_string(), "# a project\n".to_string())];
    let mut conflict_groups: Vec<usize> = Vec::new(); // members per group
    let mut md_groups: Vec<usize> = Vec::new();
    let mut phase = 1;
    for i in 1..=n {
        let key = if speckit {
            format!("T{i:03}")
        } else {
            i.to_string()
        };
        if speckit && i > 1 && phase < phases && rng.random_bool(0.3) {
            phase += 1;
        }
        let mut parallel = i > 1 && rng.random_bool(0.4);
        let mut depends = Vec::new();
        if i > 1 && rng.random_bool(0.3) {
            let k = rng.random_range(1..=2.min(i - 1));
            let mut earlier: Vec<usize> = (1..i).collect();
            for _ in 0..k {
                let at = rng.random_range(0..earlier.len());
                let d = earlier.remove(at);
                depends.push(tasks[d - 1].key.clone());
            }
        }
        let mut behaviour = pick_behaviour(&mut rng);
        match &mut behaviour {
            Behaviour::Conflict { group } => {
                // Join the latest group that has one member, or open a new one.
                match conflict_groups.iter().rposition(|m| *m == 1) {
                    Some(g) if rng.random_bool(0.8) => {
                        *group = g;
                        conflict_groups[g] += 1;
                        // Run beside the member before it, as far as the graph allows.
                        parallel = true;
                        depends.clear();
                    }
                    _ => {
                        conflict_groups.push(1);
                        *group = conflict_groups.len() - 1;
                    }
                }
            }
            Behaviour::ModifyDelete { group, deleter } => {
                match md_groups.iter().rposition(|m| *m == 1) {
                    Some(g) => {
                        *group = g;
                        *deleter = true;
                        md_groups[g] += 1;
                        parallel = true;
                        depends.clear();
                    }
                    None => {
                        md_groups.push(1);
                        *group = md_groups.len() - 1;
                        base_files.push((
                            format!("base-shared-{group}.txt"),
                            format!("base content {group}\n"),
                        ));
                    }
                }
            }
            Behaviour::Delete => {
                base_files.push((
                    format!("del-{}.txt", key.to_lowercase()),
                    format!("to be deleted by {key}\n"),
                ));
            }
            _ => {}
        }
        let name = key.to_lowercase();
        let lines = lines_for(&behaviour, &name);
        tasks.push(PlanTask {
            title: format!("Task {key}"),
            key,
            parallel,
            depends,
            phase,
            behaviour,
            lines,
        });
    }

    let verify = match rng.random_range(0..100) {
        0..=49 => Verify::None,
        50..=69 => Verify::Pass,
        70..=77 => Verify::Fail,
        78..=90 => Verify::Megabytes,
        _ => Verify::Hang,
    };
    let names = [
        "max_parallel_sessions",
        "conflict_policy",
        "max_attempts",
        "review_implementation",
        "verification_command",
        "empty_session",
        "turn_timeout_secs",
        "verify_timeout_secs",
    ];
    let at_create = names
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.6))
        .collect();
    let settings = Settings {
        max_parallel_sessions: rng.random_range(1..=6),
        conflict_policy: if rng.random_bool(0.5) { "fix" } else { "wait" },
        max_attempts: rng.random_range(1..=3),
        review_implementation: rng.random_bool(0.5),
        verify,
        empty_session: if rng.random_bool(0.6) {
            "done"
        } else {
            "review"
        },
        turn_timeout_secs: rng.random_range(3..=6),
        verify_timeout_secs: rng.random_range(2..=4),
        at_create,
    };
    let resolving_fixer = rng.random_bool(0.5);

    // Moments: person actions now and then, and faults.
    let horizon = 12 * n + 20;
    let mut timed = Vec::new();
    let actions = match rng.random_range(0..100) {
        0..=49 => 0,
        50..=79 => 1,
        80..=94 => 2,
        _ => 4,
    };
    let keys: Vec<String> = tasks.iter().map(|t| t.key.clone()).collect();
    for a in 0..actions {
        let act = match rng.random_range(0..100) {
            0..=14 => Act::Session {
                decision: ["retry", "skip", "cancel"]
                    .choose(&mut rng)
                    .copied()
                    .unwrap(),
                pick: rng.random(),
            },
            15..=29 => Act::Task {
                decision: ["retry", "skip", "cancel"]
                    .choose(&mut rng)
                    .copied()
                    .unwrap(),
                pick: rng.random(),
            },
            30..=33 => Act::CancelAll,
            34..=59 => {
                let behaviour = [
                    Behaviour::Normal,
                    Behaviour::Nothing,
                    Behaviour::Slow { ms: 300 },
                ]
                .choose(&mut rng)
                .unwrap()
                .clone();
                let name = format!("x{a}");
                let mut depends_on = Vec::new();
                if rng.random_bool(0.5) {
                    depends_on.push(keys.choose(&mut rng).unwrap().clone());
                }
                Act::Spawn {
                    name: format!("Extra {a}"),
                    lines: lines_for(&behaviour, &name),
                    depends_on,
                }
            }
            _ => {
                let kind = ["notification", "broadcast", "request", "blocking"]
                    .choose(&mut rng)
                    .copied()
                    .unwrap();
                let to = if kind == "blocking" || rng.random_bool(0.5) {
                    Some(rng.random())
                } else {
                    None
                };
                Act::Message {
                    kind,
                    to,
                    text: format!("note {a} from the harness"),
                }
            }
        };
        timed.push(Timed {
            after_events: rng.random_range(3..=horizon),
            on: None,
            act,
        });
    }
    for (chance, act) in [(0.2, Act::KillAgent), (0.15, Act::RestartServer)] {
        if rng.random_bool(chance) {
            let on = rng.random_bool(0.5).then(|| {
                *["merging", "verifying", "prompting", "conflicted", "blocked"]
                    .choose(&mut rng)
                    .unwrap()
            });
            timed.push(Timed {
                after_events: rng.random_range(5..=horizon / 2),
                on,
                act,
            });
        }
    }
    timed.sort_by_key(|t| t.after_events);
    Scenario {
        seed,
        settings,
        speckit,
        tasks,
        base_files,
        resolving_fixer,
        timed,
        person_seed: rng.random(),
    }
}

impl Scenario {
    /// The plan as `tasks.md`, placeholders not yet filled.
    pub fn tasks_md(&self) -> String {
        let mut out = String::from("# Implementation Plan\n\n");
        let mut phase = 0;
        for t in &self.tasks {
            if self.speckit {
                if t.phase != phase {
                    phase = t.phase;
                    let _ = write!(out, "## Phase {phase}: Part {phase}\n\n");
                }
                let p = if t.parallel { "[P] " } else { "" };
                let _ = writeln!(out, "- [ ] {} {p}{}", t.key, t.title);
            } else {
                let p = if t.parallel { " (P)" } else { "" };
                let _ = writeln!(out, "- [ ] {}. {}{p}", t.key, t.title);
            }
            for l in &t.lines {
                let _ = writeln!(out, "  - {l}");
            }
            if !t.depends.is_empty() {
                let _ = writeln!(out, "  - _Depends: {}_", t.depends.join(", "));
            }
            if self.speckit {
                out.push('\n');
            }
        }
        out
    }

    /// The spec files to import, placeholders filled.
    pub fn spec_files(&self, spec: &str, marks: &str) -> Value {
        json!({
            "requirements.md": super::common::spec::REQUIREMENTS,
            "design.md": super::common::spec::DESIGN,
            "tasks.md": fill(&self.tasks_md(), spec, marks),
        })
    }

    /// What a failing seed prints besides its plan.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "seed {}: {} tasks ({}), settings {:?}, resolving fixer: {}\n",
            self.seed,
            self.tasks.len(),
            if self.speckit {
                "spec-kit phases"
            } else {
                "kiro"
            },
            self.settings,
            self.resolving_fixer
        );
        for t in &self.tasks {
            let _ = writeln!(
                out,
                "  task {} behaviour {:?} parallel {} depends {:?}",
                t.key, t.behaviour, t.parallel, t.depends
            );
        }
        for t in &self.timed {
            let on =
                t.on.map(|s| format!(", then on a change to {s}"))
                    .unwrap_or_default();
            let _ = writeln!(out, "  after {} events{on}: {:?}", t.after_events, t.act);
        }
        out
    }
}
