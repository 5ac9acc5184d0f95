//! The dependency graph of a plan's units of work (its top-level items), the checks
//! a spec must pass before it is approved, and which tasks may start now.
//!
//! The rules, in order of strength:
//! - an item's own `_Depends: …_` wins over the default ordering; a key that names a
//!   sub-item stands for the unit of work that sub-item belongs to;
//! - without it, an item waits for the item before it, or, if that item ran in
//!   parallel with its own predecessors, for that whole parallel group;
//! - `(P)`/`[P]` makes an item run alongside its predecessor: it gets the same
//!   dependencies instead of waiting for it;
//! - a phase (spec-kit `## Phase N`) is a barrier: the first items of a phase, and
//!   every item with explicit dependencies, also wait for the items that end the
//!   previous phase, which transitively means all of it;
//! - `_Depends: …_` on a sub-item is added to its unit of work, because the session
//!   doing that unit cannot finish its checklist without it.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::TasksDoc;

/// The units of work and what each waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskGraph {
    /// One node per distinct top-level key, in document order.
    pub nodes: Vec<GraphNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphNode {
    pub key: String,
    /// Keys of the nodes this one waits for; an unknown key is kept so that
    /// [`check_graph`] can report it.
    pub depends: Vec<String>,
}

/// A reason the plan cannot be carried out as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GraphError {
    #[error("task {task} (line {line}) depends on {depends_on}, which is not a task in this plan")]
    UnknownDependency {
        task: String,
        depends_on: String,
        line: usize,
    },
    #[error("dependency cycle: {}", keys.join(" → "))]
    Cycle { keys: Vec<String> },
}

/// Builds the graph of the top-level items by the rules in the module documentation.
pub fn graph(doc: &TasksDoc) -> TaskGraph {
    let items = &doc.items;
    let roots = roots(doc);
    let mut key_root: HashMap<&str, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        key_root.entry(item.key.as_str()).or_insert(roots[index]);
    }
    let resolve = |dep: &str| match key_root.get(dep) {
        Some(&root) => items[root].key.clone(),
        None => dep.to_owned(),
    };
    // Dependencies declared by sub-items, gathered on their unit of work.
    let mut inherited: HashMap<usize, Vec<String>> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let root = roots[index];
        if root == index {
            continue;
        }
        for dep in &item.depends {
            let resolved = resolve(dep);
            if resolved != items[root].key {
                inherited.entry(root).or_default().push(resolved);
            }
        }
    }

    let mut nodes: Vec<GraphNode> = Vec::new();
    let mut node_of: HashMap<String, usize> = HashMap::new();
    let mut phase: Option<&Option<String>> = None;
    let mut segment: Vec<usize> = Vec::new();
    let mut barrier: Vec<String> = Vec::new();
    let mut group: Vec<usize> = Vec::new();
    let mut group_deps: Vec<String> = Vec::new();

    for (index, item) in items.iter().enumerate().filter(|(i, _)| roots[*i] == *i) {
        if phase != Some(&item.phase) {
            if phase.is_some() && !segment.is_empty() {
                barrier = sinks(&nodes, &segment);
            }
            phase = Some(&item.phase);
            segment.clear();
            group = barrier
                .iter()
                .filter_map(|key| node_of.get(key).copied())
                .collect();
            group_deps = barrier.clone();
        }
        let node = *node_of.entry(item.key.clone()).or_insert_with(|| {
            nodes.push(GraphNode {
                key: item.key.clone(),
                depends: Vec::new(),
            });
            nodes.len() - 1
        });
        let explicit: Vec<String> = item.depends.iter().map(|dep| resolve(dep)).collect();
        let mut base = if !explicit.is_empty() {
            let mut deps = explicit;
            deps.extend(barrier.iter().cloned());
            deps
        } else if item.parallel {
            group_deps.clone()
        } else {
            reduce(&nodes, &group)
        };
        if item.depends.is_empty() {
            // Implicit ordering never makes a node wait for itself (duplicate keys).
            base.retain(|dep| *dep != item.key);
        }
        dedup(&mut base);
        if item.parallel {
            group.push(node);
        } else {
            group = vec![node];
        }
        group_deps = base.clone();
        let deps = &mut nodes[node].depends;
        for dep in base
            .into_iter()
            .chain(inherited.remove(&index).unwrap_or_default())
        {
            if !deps.contains(&dep) {
                deps.push(dep);
            }
        }
        segment.push(node);
    }
    TaskGraph { nodes }
}

/// For each item, the index of the top-level item it belongs to. Parents come before
/// their children in a parsed document; a hand-made one that breaks this is treated
/// as flat rather than trusted.
fn roots(doc: &TasksDoc) -> Vec<usize> {
    let mut roots: Vec<usize> = Vec::with_capacity(doc.items.len());
    for (index, item) in doc.items.iter().enumerate() {
        roots.push(match item.parent {
            Some(parent) if parent < index => roots[parent],
            _ => index,
        });
    }
    roots
}

/// The members of a parallel group that no other member already waits for.
fn reduce(nodes: &[GraphNode], group: &[usize]) -> Vec<String> {
    not_waited_for(nodes, group)
}

/// The nodes of a phase that nothing else in the phase waits for: the phase is over
/// when they are.
fn sinks(nodes: &[GraphNode], segment: &[usize]) -> Vec<String> {
    not_waited_for(nodes, segment)
}

fn not_waited_for(nodes: &[GraphNode], members: &[usize]) -> Vec<String> {
    let waited: HashSet<&str> = members
        .iter()
        .flat_map(|&m| nodes[m].depends.iter().map(String::as_str))
        .collect();
    let mut seen: HashSet<&str> = HashSet::new();
    members
        .iter()
        .map(|&m| nodes[m].key.as_str())
        .filter(|key| !waited.contains(key) && seen.insert(key))
        .map(str::to_owned)
        .collect()
}

fn dedup(keys: &mut Vec<String>) {
    let mut seen = HashSet::new();
    keys.retain(|key| seen.insert(key.clone()));
}

/// Every dependency on a key that is not a node, and one cycle if there is any (its
/// keys in order: each waits for the next, and the last waits for the first).
pub fn check_graph(doc: &TasksDoc, graph: &TaskGraph) -> Vec<GraphError> {
    let mut errors = Vec::new();
    let index: HashMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .rev()
        .map(|(i, node)| (node.key.as_str(), i))
        .collect();
    let roots = roots(doc);
    for node in &graph.nodes {
        for dep in &node.depends {
            if index.contains_key(dep.as_str()) {
                continue;
            }
            // The line that names it: an item of this unit of work listing the key.
            let line = doc
                .items
                .iter()
                .enumerate()
                .find(|(i, item)| {
                    doc.items[roots[*i]].key == node.key && item.depends.contains(dep)
                })
                .or_else(|| {
                    doc.items
                        .iter()
                        .enumerate()
                        .find(|(_, item)| item.key == node.key)
                })
                .map_or(0, |(_, item)| item.line);
            errors.push(GraphError::UnknownDependency {
                task: node.key.clone(),
                depends_on: dep.clone(),
                line,
            });
        }
    }
    if let Some(keys) = find_cycle(graph, &index) {
        errors.push(GraphError::Cycle { keys });
    }
    errors
}

/// An iterative depth-first search, so a long chain of tasks cannot overflow the stack.
fn find_cycle(graph: &TaskGraph, index: &HashMap<&str, usize>) -> Option<Vec<String>> {
    let edges: Vec<Vec<usize>> = graph
        .nodes
        .iter()
        .map(|node| {
            node.depends
                .iter()
                .filter_map(|dep| index.get(dep.as_str()).copied())
                .collect()
        })
        .collect();
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const FINISHED: u8 = 2;
    let mut state = vec![NEW; edges.len()];
    for start in 0..edges.len() {
        if state[start] != NEW {
            continue;
        }
        state[start] = ON_PATH;
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            let Some(&to) = edges[node].get(*next) else {
                state[node] = FINISHED;
                path.pop();
                continue;
            };
            *next += 1;
            match state[to] {
                NEW => {
                    state[to] = ON_PATH;
                    path.push((to, 0));
                }
                ON_PATH => {
                    let from = path.iter().position(|&(n, _)| n == to).unwrap_or(0);
                    return Some(
                        path[from..]
                            .iter()
                            .map(|&(n, _)| graph.nodes[n].key.clone())
                            .collect(),
                    );
                }
                _ => {}
            }
        }
    }
    None
}

/// The keys that may start now: not done themselves, and everything they wait for is
/// done. An unknown dependency is never done, so its task never becomes ready.
pub fn ready(graph: &TaskGraph, done: &HashSet<String>) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    graph
        .nodes
        .iter()
        .filter(|node| {
            !done.contains(&node.key) && node.depends.iter().all(|dep| done.contains(dep))
        })
        .filter(|node| seen.insert(node.key.as_str()))
        .map(|node| node.key.clone())
        .collect()
}
