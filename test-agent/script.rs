//! The script language: one command per line, first word is the command, the rest
//! of the line its argument. `#` starts a comment line. See README.md.

/// One line of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Say(String),
    Stream(usize, String),
    Think(String),
    Plan(Vec<String>),
    Tool(String),
    Write {
        path: String,
        content: String,
    },
    WriteDirect {
        path: String,
        content: String,
    },
    AppendDirect {
        path: String,
        content: String,
    },
    Read(String),
    Run {
        command: String,
        args: Vec<String>,
    },
    Ask(String),
    /// `sh SCRIPT`: the agent runs `sh -c SCRIPT` itself, in the session's cwd, as
    /// a real agent's own shell tool does (not through the client's terminal).
    Sh(String),
    Usage {
        used: u64,
        size: u64,
        cost: Option<f64>,
    },
    Sleep(u64),
    /// `stamp N MS [say|tool]`: N updates `stamp <i> <epoch-ms>`, one every MS ms, as
    /// messages (default) or as completed tool calls (for latency benchmarks).
    Stamp {
        count: u64,
        every_ms: u64,
        as_tool: bool,
    },
    /// `repeat N SCRIPT`: runs SCRIPT (`\n` separates its lines) N times, with `{i}`
    /// in it replaced by the round (1 to N).
    Repeat {
        count: u64,
        script: String,
    },
    /// `mcp TOOL JSON`: calls TOOL on the session's first MCP server with the JSON
    /// object (the rest of the line, `{{last:/pointer}}` substituted when it runs).
    Mcp {
        tool: String,
        arguments: String,
    },
    /// `mcp-list`: the names of the first MCP server's tools.
    McpList,
    /// `hang [MS]`: waits for the cancel, then MS ms more before the turn ends.
    Hang(u64),
    Crash(i32),
    Garbage,
    ExitAfterTurn,
    /// `once PATH COMMAND...`: runs COMMAND only if PATH does not exist yet, creating
    /// PATH (empty) first, so a command can happen on the first attempt of a task
    /// only (the agent cannot know attempts; a marker file outside the worktree can).
    Once {
        path: String,
        command: Box<Command>,
    },
    /// A known command whose argument does not parse: reported as a message.
    Invalid {
        command: String,
        problem: String,
    },
    /// Not a command at all: reported as `error: unknown command WORD`.
    Unknown(String),
}

/// Parses a turn's text. `None` when no line holds a known command: the agent
/// then echoes the prompt instead.
pub fn parse(text: &str) -> Option<Vec<Command>> {
    let commands: Vec<Command> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_line)
        .collect();
    let known = commands.iter().any(|c| !matches!(c, Command::Unknown(_)));
    known.then_some(commands)
}

fn parse_line(line: &str) -> Command {
    let (word, rest) = split_word(line);
    let invalid = |problem: &str| Command::Invalid {
        command: word.to_string(),
        problem: problem.to_string(),
    };
    match word {
        "say" => Command::Say(unescape(rest)),
        "think" => Command::Think(unescape(rest)),
        "stream" => {
            let (n, text) = split_word(rest);
            match n.parse::<usize>() {
                Ok(n) => Command::Stream(n.max(1), unescape(text)),
                Err(_) => invalid("expected: stream N TEXT"),
            }
        }
        "plan" => Command::Plan(
            rest.split('|')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        ),
        "tool" => Command::Tool(rest.to_string()),
        "write" | "write-direct" | "append-direct" => {
            let (path, content) = split_word(rest);
            if path.is_empty() {
                return invalid("expected a PATH");
            }
            let (path, content) = (path.to_string(), unescape(content));
            match word {
                "write" => Command::Write { path, content },
                "write-direct" => Command::WriteDirect { path, content },
                _ => Command::AppendDirect { path, content },
            }
        }
        "read" if rest.is_empty() => invalid("expected: read PATH"),
        "read" => Command::Read(rest.to_string()),
        "run" => {
            let mut words = rest.split_whitespace().map(String::from);
            match words.next() {
                Some(command) => Command::Run {
                    command,
                    args: words.collect(),
                },
                None => invalid("expected: run COMMAND ARGS..."),
            }
        }
        "ask" => Command::Ask(rest.to_string()),
        "sh" if rest.is_empty() => invalid("expected: sh SCRIPT"),
        "sh" => Command::Sh(unescape(rest)),
        "usage" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let used = words.first().and_then(|w| w.parse().ok());
            let size = words.get(1).and_then(|w| w.parse().ok());
            let cost = words.get(2).map(|w| w.parse::<f64>());
            match (used, size, cost) {
                (Some(used), Some(size), None) => Command::Usage {
                    used,
                    size,
                    cost: None,
                },
                (Some(used), Some(size), Some(Ok(cost))) => Command::Usage {
                    used,
                    size,
                    cost: Some(cost),
                },
                _ => invalid("expected: usage USED SIZE [COST]"),
            }
        }
        "sleep" => match rest.parse() {
            Ok(ms) => Command::Sleep(ms),
            Err(_) => invalid("expected: sleep MS"),
        },
        "stamp" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let count = words.first().and_then(|w| w.parse().ok());
            let every = words.get(1).and_then(|w| w.parse().ok());
            let kind = words.get(2).copied();
            match (count, every, kind, words.len() <= 3) {
                (Some(count), Some(every_ms), None | Some("say" | "tool"), true) => {
                    Command::Stamp {
                        count,
                        every_ms,
                        as_tool: kind == Some("tool"),
                    }
                }
                _ => invalid("expected: stamp N MS [say|tool]"),
            }
        }
        "repeat" => {
            let (n, script) = split_word(rest);
            match n.parse() {
                Ok(count) if !script.is_empty() => Command::Repeat {
                    count,
                    script: unescape(script),
                },
                _ => invalid("expected: repeat N SCRIPT"),
            }
        }
        "mcp" => {
            let (tool, arguments) = split_word(rest);
            if tool.is_empty() {
                return invalid("expected: mcp TOOL [JSON]");
            }
            Command::Mcp {
                tool: tool.to_string(),
                arguments: arguments.to_string(),
            }
        }
        "mcp-list" if rest.is_empty() => Command::McpList,
        "mcp-list" => invalid("expected: mcp-list"),
        "hang" if rest.is_empty() => Command::Hang(0),
        "hang" => match rest.parse() {
            Ok(ms) => Command::Hang(ms),
            Err(_) => invalid("expected: hang [MS]"),
        },
        "crash" if rest.is_empty() => Command::Crash(3),
        "crash" => match rest.parse() {
            Ok(code) => Command::Crash(code),
            Err(_) => invalid("expected: crash [CODE]"),
        },
        "garbage" => Command::Garbage,
        "exit-after-turn" => Command::ExitAfterTurn,
        "once" => {
            let (path, command) = split_word(rest);
            if path.is_empty() || command.is_empty() {
                return invalid("expected: once PATH COMMAND...");
            }
            Command::Once {
                path: path.to_string(),
                command: Box::new(parse_line(command)),
            }
        }
        _ => Command::Unknown(word.to_string()),
    }
}

/// Splits off the first word; the rest keeps its inner spacing.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (s, ""),
    }
}

/// The two characters `\n` become a newline.
fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
}

/// Splits `text` into `n` pieces of roughly equal length (fewer if it is shorter).
pub fn chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    (0..n)
        .map(|i| {
            let (start, end) = (i * chars.len() / n, (i + 1) * chars.len() / n);
            chars[start..end].iter().collect()
        })
        .collect()
}

/// Splits a `--script` file into turns at lines consisting of `---`.
pub fn split_turns(script: &str) -> Vec<String> {
    let mut turns = vec![String::new()];
    for line in script.lines() {
        if line.trim() == "---" {
            turns.push(String::new());
        } else {
            let turn = turns.last_mut().unwrap();
            turn.push_str(line);
            turn.push('\n');
        }
    }
    turns
}
