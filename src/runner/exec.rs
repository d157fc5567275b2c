//! `exec:` steps: a program run with its arguments (through `/bin/sh -c`
//! only with `shell: true`), in a fresh temporary working directory removed
//! afterwards, stdin closed, an environment holding only `PATH`, `HOME` and
//! the step's `env`, in a process group of its own: when the step's timeout
//! passes the whole group is killed (children included), and whatever the
//! process left running in its group is killed when it exits. Standard
//! output and error are kept up to `max_body` bytes each.
//!
//! The process's stdout is the body `body`, `json` and `regex` read;
//! `exit_code`, `stdout` and `stderr` query its [`Ended`].

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::http::{Ended, Exchange, Transport, TransportError};
use super::tcp;
use crate::config::ExecStep;
use crate::config::template::{RenderError, Scope};
use crate::journey::result::FailureKind;
use crate::journey::timing::Timings;

/// The variables taken from Lookout's own environment; nothing else is.
pub const INHERITED: [&str; 2] = ["PATH", "HOME"];

/// An `exec` step with its templates rendered.
#[derive(Debug, Clone)]
pub struct Program {
    /// Program and arguments; with `shell`, the one command line.
    pub command: Vec<String>,
    pub shell: bool,
    pub env: Vec<(String, String)>,
}

impl Program {
    /// Renders the command and the environment.
    ///
    /// Errors: a template names a value this run does not have.
    pub fn render(step: &ExecStep, scope: &dyn Scope) -> Result<Self, RenderError> {
        Ok(Self {
            command: step
                .command
                .iter()
                .map(|t| t.render_string(scope))
                .collect::<Result<_, _>>()?,
            shell: step.shell,
            env: step
                .env
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.render_string(scope)?)))
                .collect::<Result<_, RenderError>>()?,
        })
    }

    /// `exec:program` (`exec:sh` for a command line), as stored.
    pub fn url(&self) -> String {
        crate::config::exec_target(self.shell, self.command.first().map(String::as_str))
    }

    fn name(&self) -> &str {
        match self.shell {
            true => "sh",
            false => self.command.first().map_or("", String::as_str),
        }
    }
}

/// Runs `program` within `timeout`, keeping up to `max_output` bytes of
/// stdout and of stderr.
///
/// Errors (kinds): `Prober` (the working directory cannot be made, the
/// program cannot be started: not found, not executable); `Timeout` (the
/// process group was killed at the timeout). A non-zero exit is not an
/// error: it is judged by `expect` (`exit_code`, implicitly `0`).
pub async fn send(
    program: &Program,
    timeout: Duration,
    max_output: u64,
) -> Result<Exchange, TransportError> {
    let clock = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("lookout-exec-")
        .tempdir()
        .map_err(|e| {
            let msg = format!(
                "cannot make a working directory for `{}`: {e}",
                program.name()
            );
            TransportError::new(FailureKind::Prober, msg)
        })?;
    let mut command = match program.shell {
        true => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").args(&program.command);
            c
        }
        false => {
            let mut c = Command::new(&program.command[0]);
            c.args(&program.command[1..]);
            c
        }
    };
    command
        .current_dir(dir.path())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in INHERITED {
        if let Some(v) = std::env::var_os(name) {
            command.env(name, v);
        }
    }
    command.envs(program.env.iter().map(|(k, v)| (k, v)));
    let mut child = command.spawn().map_err(|e| {
        let msg = format!("cannot start `{}`: {e}", program.name());
        TransportError::new(FailureKind::Prober, msg)
    })?;
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let stdout = tokio::spawn(read_bounded(child.stdout.take(), max_output));
    let stderr = tokio::spawn(read_bounded(child.stderr.take(), max_output));
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    // The whole group: on a timeout everything it started, after an exit
    // whatever it left behind. The leader is not reaped yet on a timeout,
    // so its id still names this group.
    if let Some(pid) = group {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let status = match waited {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            let msg = format!("lost `{}` while waiting for it: {e}", program.name());
            return Err(TransportError::new(FailureKind::Prober, msg));
        }
        Err(_) => {
            let _ = child.wait().await;
            let what = format!("`{}` did not finish", program.name());
            let mut e = tcp::timed_out(what, timeout);
            e.message.push_str("; its process group was killed");
            return Err(e);
        }
    };
    let (out, out_cut) = stdout.await.unwrap_or_default();
    let (err, err_cut) = stderr.await.unwrap_or_default();
    drop(dir);
    let elapsed = clock.elapsed();
    let ms = elapsed.as_millis().try_into().unwrap_or(u64::MAX);
    let timings = Timings {
        total_ms: Some(ms),
        ..Timings::default()
    };
    use std::os::unix::process::ExitStatusExt;
    let mut x = tcp::answer(
        Transport::Exec,
        out,
        "text/plain",
        program.url(),
        elapsed,
        timings,
    );
    x.exec = Some(Ended {
        exit_code: status.code(),
        signal: status.signal(),
        stderr: err,
        cut: out_cut || err_cut,
    });
    Ok(x)
}

/// Reads a pipe to its end, keeping the first `max` bytes; `true` when
/// more came.
async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>, max: u64) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, cut),
            Ok(n) => {
                let room = (max as usize).saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
}
