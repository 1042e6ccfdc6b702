//! The gateway binary as a child process, for tests of the command line, start-up, signals
//! and several processes on one database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The gateway binary, started on a fresh port with JSON logs.
pub struct Gateway {
    pub child: Child,
    pub base: String,
    pub stdout_lines: Vec<String>,
}

// The child is handed to the caller, which kills and waits for it.
#[allow(clippy::zombie_processes)]
pub fn start_binary(dir: &std::path::Path, db_url: &str, extra_env: &[(&str, &str)]) -> Gateway {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_feedback-gateway"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FEEDBACK_LISTEN", "127.0.0.1:0")
        .env("FEEDBACK_LOG__FORMAT", "json")
        .env("FEEDBACK_DATABASE_URL", db_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let status = child.wait();
            panic!("gateway exited ({status:?}) before listening; output: {lines:#?}");
        }
        if line.contains("feedback-gateway listening") {
            let v: Value = serde_json::from_str(&line).unwrap();
            let addr = v["fields"]["addr"].as_str().unwrap().to_owned();
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            return Gateway {
                child,
                base: format!("http://{addr}"),
                stdout_lines: lines,
            };
        }
        lines.push(line);
    }
}

impl Gateway {
    /// The API key the demo tenant was created with, if this start printed one.
    pub fn demo_key(&self) -> Option<String> {
        self.stdout_lines
            .join("")
            .split_whitespace()
            .find(|w| w.starts_with("fgw_"))
            .map(|w| w.trim_matches('\'').to_owned())
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
