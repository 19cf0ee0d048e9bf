//! Running the `fovea` binary from tests: both pipes drained on threads (a chatty child cannot
//! block on a full pipe), and a timeout that kills it, so a hang fails the test instead of CI.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `fovea args...` with `env` added to the inherited environment, `stdin` written to its
/// standard input (a pipe) or stdin closed when `None`, killing it after `timeout`.
pub fn run_fovea(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>, timeout: Duration) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fovea"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot start the fovea binary");
    let writer = stdin.map(|text| {
        let mut input = child.stdin.take().expect("piped");
        let text = text.to_string();
        thread::spawn(move || {
            let _ = input.write_all(text.as_bytes());
        })
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for fovea") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fovea {args:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Outcome { code: status.code(), stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}
