//! `spectask task watch ID`: live progress bars (one per session still at work, one
//! overall) until the task leaves implementation; and the bar rendering that
//! `task progress` and `demo` share.

use std::io::{IsTerminal, Write};

use anyhow::bail;
use serde_json::Value;

use super::client::Client;
use super::output;
use crate::domain::SpecTaskStatus;
use crate::orchestrator::progress::{Overview, Progress, SessionProgress};

/// Characters between the brackets of a bar.
pub const BAR_WIDTH: usize = 20;
/// How long one long poll of the event log waits for something new. Agents' tool
/// calls are events too, so a ticked sub-item is usually seen at once; this bounds
/// the delay when an agent edits `tasks.md` without one.
const POLL_SECONDS: u64 = 10;
const NAME_WIDTH: usize = 32;

/// `[#####---------------]` for a fraction from 0.0 to 1.0.
pub fn bar(fraction: f64) -> String {
    let filled = (fraction.clamp(0.0, 1.0) * BAR_WIDTH as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled))
}

/// The overall bar with its figures: `[####----] 50%  1/2 tasks`.
pub fn overall(p: &Progress) -> String {
    format!(
        "{} {:>3}%  {}/{} tasks",
        bar(p.fraction),
        (p.fraction * 100.0).floor() as u32,
        p.tasks_done,
        p.tasks_total
    )
}

fn session_line(s: &SessionProgress) -> String {
    let fraction = if s.sub_items_total == 0 {
        0.0
    } else {
        s.sub_items_done as f64 / s.sub_items_total as f64
    };
    format!(
        "  {:<NAME_WIDTH$} {} {}/{}  {}",
        output::clip(&s.name, NAME_WIDTH),
        bar(fraction),
        s.sub_items_done,
        s.sub_items_total,
        s.status
    )
}

/// The block `watch` draws: a header, a bar per session that is not finished
/// (its sub-items done out of all), and the overall bar.
pub fn render(p: &Progress) -> Vec<String> {
    let mut lines = vec![format!(
        "task {} [{}]: {}/{} tasks, {} sessions running",
        p.spec_task_id, p.status, p.tasks_done, p.tasks_total, p.sessions_running
    )];
    lines.extend(
        p.sessions
            .iter()
            .filter(|s| !s.status.is_terminal())
            .map(session_line),
    );
    lines.push(format!("  {:<NAME_WIDTH$} {}", "overall", overall(p)));
    lines
}

/// Where a watched task ends: `Some(true)` for a good end, `Some(false)` for a bad
/// one, `None` while it may still be implemented.
fn outcome(status: SpecTaskStatus) -> Option<bool> {
    match status {
        SpecTaskStatus::Done | SpecTaskStatus::ImplementationReview => Some(true),
        SpecTaskStatus::Failed | SpecTaskStatus::Cancelled | SpecTaskStatus::Rejected => {
            Some(false)
        }
        _ => None,
    }
}

/// Draws snapshots: in place on a terminal, a new block (or JSON line) per change
/// otherwise.
struct Screen {
    json: bool,
    terminal: bool,
    last: Option<String>,
    drawn: usize,
}

impl Screen {
    fn show(&mut self, p: &Progress) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            let line = serde_json::to_string(p)?;
            if self.last.as_ref() != Some(&line) {
                writeln!(out, "{line}")?;
                self.last = Some(line);
            }
            return Ok(out.flush()?);
        }
        let lines = render(p);
        let text = lines.join("\n");
        if self.last.as_ref() == Some(&text) {
            return Ok(());
        }
        if self.terminal && self.drawn > 0 {
            // Up to the first line of the previous block, and clear from there down.
            write!(out, "\x1b[{}A\r\x1b[J", self.drawn)?;
        } else if self.drawn > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{text}")?;
        self.drawn = lines.len();
        self.last = Some(text);
        Ok(out.flush()?)
    }
}

/// Follows a task until it is no longer being implemented: exit 0 when it ends in
/// implementation review or done, an error (exit 1) when it fails, is cancelled or
/// rejected.
pub async fn watch(client: &Client, id: i64, json: bool) -> anyhow::Result<()> {
    let overview: Overview = client.get(&format!("/spec-tasks/{id}/overview")).await?;
    // The overview's events are read before its progress, so continuing after the
    // newest of them misses no change.
    let mut after = overview.events.last().map_or(0, |e| e.id);
    let mut progress = overview.progress;
    let mut screen = Screen {
        json,
        terminal: std::io::stdout().is_terminal(),
        last: None,
        drawn: 0,
    };
    loop {
        screen.show(&progress)?;
        match outcome(progress.status) {
            Some(true) => {
                if !json {
                    println!("task {id} is {}", progress.status);
                }
                return Ok(());
            }
            Some(false) => bail!("task {id} ended {}", progress.status),
            None => {}
        }
        let page: Value = client
            .get(&format!(
                "/events?spec_task={id}&after={after}&wait={POLL_SECONDS}&limit=1000"
            ))
            .await?;
        after = page["next_after"].as_i64().unwrap_or(after);
        progress = client.get(&format!("/spec-tasks/{id}/progress")).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_fixed_width_and_round() {
        assert_eq!(bar(0.0), format!("[{}]", "-".repeat(20)));
        assert_eq!(bar(1.0), format!("[{}]", "#".repeat(20)));
        assert_eq!(bar(0.5), format!("[{}{}]", "#".repeat(10), "-".repeat(10)));
        assert_eq!(bar(2.0), bar(1.0));
    }

    #[test]
    fn a_watch_ends_well_only_in_review_or_done() {
        assert_eq!(outcome(SpecTaskStatus::ImplementationReview), Some(true));
        assert_eq!(outcome(SpecTaskStatus::Done), Some(true));
        assert_eq!(outcome(SpecTaskStatus::Failed), Some(false));
        assert_eq!(outcome(SpecTaskStatus::Cancelled), Some(false));
        assert_eq!(outcome(SpecTaskStatus::Rejected), Some(false));
        assert_eq!(outcome(SpecTaskStatus::Implementing), None);
        assert_eq!(outcome(SpecTaskStatus::ImplementationQueued), None);
    }
}
