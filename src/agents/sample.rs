//! CPU and memory of an agent's process tree, read from /proc (Linux). The tree is
//! the agent's process group: spectask starts every agent as a group leader.

use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Reading {
    ticks: u64,
    rss_pages: u64,
    at: Instant,
}

/// Sums CPU ticks and resident pages over every process in group `pgid`.
fn read_group(pgid: i32) -> Option<Reading> {
    let mut ticks = 0;
    let mut rss_pages = 0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // fields[0] is the state (field 3); pgrp is field 5, utime 14, stime 15, rss 24.
        let num = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
        // A process that has exited but is not reaped yet (zombie, dead) holds no
        // memory: counting it would chart a stopping agent as 0 bytes.
        let gone = matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x"));
        if num(5) == Some(pgid as u64) && !gone {
            found = true;
            ticks += num(14).unwrap_or(0) + num(15).unwrap_or(0);
            rss_pages += num(24).unwrap_or(0);
        }
    }
    found.then(|| Reading {
        ticks,
        rss_pages,
        at: Instant::now(),
    })
}

/// Samples one process group over time; the first sample gives no CPU figure.
pub struct Sampler {
    pgid: i32,
    last: Option<Reading>,
}

impl Sampler {
    pub fn new(pgid: i32) -> Sampler {
        Sampler { pgid, last: None }
    }

    /// CPU use since the previous sample (percent of one core) and resident memory
    /// in bytes, or `None` when the group has no process left.
    pub fn sample(&mut self) -> Option<(f64, i64)> {
        let now = read_group(self.pgid)?;
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as i64;
        let cpu = match self.last {
            Some(prev) => {
                let secs = now.at.duration_since(prev.at).as_secs_f64().max(1e-6);
                (now.ticks.saturating_sub(prev.ticks)) as f64 / hz / secs * 100.0
            }
            None => 0.0,
        };
        self.last = Some(now);
        Some((cpu, now.rss_pages as i64 * page))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;

    #[test]
    fn samples_a_live_group() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .process_group(0)
            .spawn()
            .unwrap();
        let mut sampler = super::Sampler::new(child.id() as i32);
        // Right after exec the new image may have no page resident yet (seen on a
        // loaded machine): wait, with a deadline, for the first one to be counted.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let (_, rss) = sampler.sample().expect("the group exists");
            if rss > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no resident memory reported"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().unwrap();
        // Killed but not reaped: a zombie, which holds nothing and is not counted.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while sampler.sample().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "a zombie counted as the group's process"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(sampler.sample().is_none(), "an empty group gives no sample");
    }
}
