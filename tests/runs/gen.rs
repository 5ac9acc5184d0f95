//! What one seed makes: the plan, each task's agent behaviour, the settings, and the
//! person and fault schedule. Deterministic for a seed (only timing is not).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Git as the agent runs it in its terminal, with an identity of its own.
const AGENT_GIT: &str = "run git -c user.name=agent -c user.email=agent@example.com";
/// Files on the base branch that tasks may delete, one task each.
pub const OLD_FILES: usize = 4;

/// What the agent does in one task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Change,
    NoChange,
    Untracked,
    Delete(usize),
    TasksMdOnly,
    OwnCommit,
    OwnCommitLeftover,
    ResetOwnWork,
    ResetBehindCut,
    Conflict,
    Crash,
    Hang,
    Slow(u64),
}

#[derive(Debug, Clone)]
pub struct PlanTask {
    pub key: String,
    pub depends: Vec<String>,
    pub parallel: bool,
    pub behaviour: Behaviour,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub tasks: Vec<PlanTask>,
    pub settings: Value,
    /// The chance, per event page, that the person does something unasked.
    pub meddling: f64,
    /// The chance, per event page, of a fault (until `max_faults`).
    pub fault_rate: f64,
    pub max_faults: usize,
}

impl Scenario {
    pub fn new(seed: u64) -> Scenario {
        let mut rng = StdRng::seed_from_u64(seed);
        // Mostly small plans, sometimes up to 30 tasks.
        let n = if rng.random_bool(0.1) {
            rng.random_range(9..=30)
        } else {
            rng.random_range(1..=8)
        };
        let mut deletable: Vec<usize> = (0..OLD_FILES).collect();
        let mut tasks: Vec<PlanTask> = Vec::new();
        for i in 1..=n {
            let key = i.to_string();
            let mut depends = Vec::new();
            let mut parallel = false;
            if i > 1 {
                match rng.random_range(0..3) {
                    // The implicit order: waits for the task before it.
                    0 => {}
                    1 => parallel = true,
                    _ => {
                        for j in 1..i {
                            if rng.random_bool(0.3) {
                                depends.push(j.to_string());
                            }
                        }
                        parallel = depends.is_empty();
                    }
                }
            }
            let behaviour = match rng.random_range(0..100) {
                0..=29 => Behaviour::Change,
                30..=39 => Behaviour::NoChange,
                40..=44 => Behaviour::Untracked,
                45..=49 => match deletable.pop() {
                    Some(f) => Behaviour::Delete(f),
                    None => Behaviour::Change,
                },
                50..=54 => Behaviour::TasksMdOnly,
                55..=59 => Behaviour::OwnCommit,
                60..=64 => Behaviour::OwnCommitLeftover,
                65..=67 => Behaviour::ResetOwnWork,
                68..=70 => Behaviour::ResetBehindCut,
                71..=79 => Behaviour::Conflict,
                80..=83 => Behaviour::Crash,
                84..=86 => Behaviour::Hang,
                _ => Behaviour::Slow(rng.random_range(50..600)),
            };
            tasks.push(PlanTask {
                key,
                depends,
                parallel,
                behaviour,
            });
        }
        let verification = match rng.random_range(0..20) {
            0..=11 => Value::Null,
            12..=14 => json!("true"),
            15..=16 => json!("false"),
            17 => json!("sleep 30"),
            18 => json!("head -c 2000000 /dev/zero | tr '\\0' x; exit 1"),
            _ => json!("test -e README.md"),
        };
        let settings = json!({
            "max_parallel_sessions": rng.random_range(1..=4),
            "conflict_policy": if rng.random_bool(0.5) { "fix" } else { "wait" },
            "max_attempts": rng.random_range(1..=3),
            "review_implementation": rng.random_bool(0.5),
            "empty_session": if rng.random_bool(0.7) { "done" } else { "review" },
            "turn_timeout_secs": 2,
            "verify_timeout_secs": 2,
            "verification_command": verification,
        });
        let meddling = if rng.random_bool(0.5) { 0.0 } else { 0.15 };
        let (fault_rate, max_faults) = if rng.random_bool(0.6) {
            (0.0, 0)
        } else {
            (0.1, rng.random_range(1..=2))
        };
        Scenario {
            seed,
            tasks,
            settings,
            meddling,
            fault_rate,
            max_faults,
        }
    }

    /// The plan as `tasks.md`: each task's sub-items are the scripted agent's commands.
    pub fn tasks_md(&self) -> String {
        let mut out = String::from("# Implementation Plan\n\n");
        for t in &self.tasks {
            let p = if t.parallel { " (P)" } else { "" };
            out.push_str(&format!("- [ ] {}. Task {}{p}\n", t.key, t.key));
            for line in commands(t) {
                out.push_str(&format!("  - {line}\n"));
            }
            if !t.depends.is_empty() {
                out.push_str(&format!("  - _Depends: {}_\n", t.depends.join(", ")));
            }
        }
        out
    }
}

fn commands(t: &PlanTask) -> Vec<String> {
    let k = &t.key;
    match t.behaviour {
        Behaviour::Change => vec![format!("write task-{k}.txt work of task {k}")],
        Behaviour::NoChange => vec![format!("say task {k} needs no change")],
        Behaviour::Untracked => vec![format!("write untracked-{k}.txt new")],
        Behaviour::Delete(f) => vec![format!("run rm -f old-{f}.txt")],
        // An empty line appended to the session's own tasks.md (terminals run no
        // shell, so `find` names the file).
        Behaviour::TasksMdOnly => {
            vec!["run find specs -name tasks.md -exec sh -c echo>>{} ;".into()]
        }
        Behaviour::OwnCommit => vec![
            format!("write own-{k}.txt own"),
            format!("{AGENT_GIT} add -A"),
            format!("{AGENT_GIT} commit -qm agent-commit-{k}"),
        ],
        Behaviour::OwnCommitLeftover => vec![
            format!("write own-{k}.txt own"),
            format!("{AGENT_GIT} add -A"),
            format!("{AGENT_GIT} commit -qm agent-commit-{k}"),
            format!("write leftover-{k}.txt left"),
        ],
        Behaviour::ResetOwnWork => vec![
            format!("write undone-{k}.txt undone"),
            format!("{AGENT_GIT} add -A"),
            format!("{AGENT_GIT} commit -qm undone-{k}"),
            "run git reset --hard HEAD~1".into(),
        ],
        Behaviour::ResetBehindCut => vec!["run git reset --hard HEAD~1".into()],
        Behaviour::Conflict => vec![format!("write shared.txt written by task {k}")],
        Behaviour::Crash => vec!["crash".into()],
        Behaviour::Hang => vec!["hang".into()],
        Behaviour::Slow(ms) => vec![format!("sleep {ms}"), format!("write slow-{k}.txt slow")],
    }
}

/// The spec files to import.
pub fn spec_files(scenario: &Scenario) -> Value {
    json!({
        "requirements.md": super::common::spec::REQUIREMENTS,
        "design.md": super::common::spec::DESIGN,
        "tasks.md": scenario.tasks_md(),
    })
}
