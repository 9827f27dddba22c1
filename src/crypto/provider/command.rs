//! The `command` key provider: a program wraps and unwraps data keys (a KMS client, Vault,
//! `systemd-creds`, `age`; docs/KEY-CUSTODY.md).
//!
//! The protocol: `PROGRAM ARG… wrap` or `PROGRAM ARG… unwrap`, executed directly (no
//! shell), with the input base64-encoded on one line of standard input, the blob's context
//! base64-encoded in the environment variable `TBS_KEY_AAD`, and the result base64-encoded on
//! one line of standard output. A non-zero exit, a timeout (the program's process group is
//! killed and the program reaped), empty or non-base64 output are KEY_UNAVAILABLE; the
//! message names the program and the first line of its standard error, never its input.
//! The program inherits the environment except `TBS_MASTER_KEY`.

use super::KeyWrapper;
use crate::error::{Error, ErrorCode, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The environment variable carrying the blob's context (base64) to the program.
pub const KEY_AAD_ENV: &str = "TBS_KEY_AAD";
/// The environment variable setting the program's timeout in milliseconds.
pub const KEY_COMMAND_TIMEOUT_ENV: &str = "TBS_KEY_COMMAND_TIMEOUT_MS";
/// The timeout when [`KEY_COMMAND_TIMEOUT_ENV`] is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);
/// Longest standard output accepted (more is read and dropped, and refused).
const MAX_OUTPUT: usize = 64 * 1024;
/// Longest standard error kept (only its first line is used).
const MAX_STDERR: usize = 4096;
/// Longest stderr line quoted in an error message.
const MAX_STDERR_LINE: usize = 200;

/// Runs a program for each wrap and unwrap (see the module documentation).
pub struct CommandWrapper {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
}

impl CommandWrapper {
    /// A wrapper running `program args… wrap|unwrap`, killed after `timeout`.
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>, timeout: Duration) -> Self {
        CommandWrapper {
            program: program.into(),
            args,
            timeout,
        }
    }

    /// The timeout from `TBS_KEY_COMMAND_TIMEOUT_MS` (milliseconds, at least 1), else
    /// [`DEFAULT_TIMEOUT`]; INVALID_ARGUMENT when it is not a positive number.
    pub fn timeout_from_env() -> Result<Duration> {
        match std::env::var(KEY_COMMAND_TIMEOUT_ENV) {
            Ok(text) if !text.trim().is_empty() => match text.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                _ => Err(Error::invalid(format!(
                    "{KEY_COMMAND_TIMEOUT_ENV}: expected a positive number of milliseconds, got '{}'",
                    text.trim()
                ))),
            },
            _ => Ok(DEFAULT_TIMEOUT),
        }
    }

    /// Runs the program for `verb` with `input` (raw bytes, base64-encoded here) and returns
    /// its decoded output in a wiped buffer.
    fn run(&self, verb: &str, aad: &[u8], input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let line = Zeroizing::new(format!("{}\n", B64.encode(input)));
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg(verb)
            .env(KEY_AAD_ENV, B64.encode(aad))
            // A raw key in this process's environment (e.g. during a rotation from `raw`) is
            // not the program's business.
            .env_remove("TBS_MASTER_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a timeout kills the program and anything it started.
            .process_group(0)
            .spawn()
            .map_err(|e| self.unavailable(verb, format!("cannot be started: {e}")))?;
        let stdin = child.stdin.take();
        let (out_tx, out_rx) = mpsc::channel();
        if let Some(mut stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let _ = out_tx.send(read_capped(&mut stdout, MAX_OUTPUT));
            });
        }
        let (err_tx, err_rx) = mpsc::channel();
        if let Some(mut stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                let _ = err_tx.send(read_capped(&mut stderr, MAX_STDERR));
            });
        }
        let (exit_tx, exit_rx) = mpsc::channel();
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = exit_tx.send(wait_without_reaping(pid));
        });
        if let Some(stdin) = stdin {
            // A program that exits without reading its input is judged by its exit status.
            let _ = write_line(stdin, line.as_bytes());
        }
        let deadline = Instant::now() + self.timeout;
        let left = || deadline.saturating_duration_since(Instant::now());
        let output = out_rx.recv_timeout(left());
        let exited = output.is_ok() && exit_rx.recv_timeout(left()).is_ok();
        if !exited {
            kill_and_reap(&mut child);
            return Err(self.unavailable(
                verb,
                format!(
                    "timed out after {} ms (killed; see {KEY_COMMAND_TIMEOUT_ENV})",
                    self.timeout.as_millis()
                ),
            ));
        }
        let status = child
            .wait()
            .map_err(|e| self.unavailable(verb, format!("cannot be waited for: {e}")))?;
        let stderr = err_rx
            .recv_timeout(left().max(Duration::from_millis(100)))
            .unwrap_or_default();
        let stderr = first_line(&stderr, &line);
        if !status.success() {
            let how = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => "failed".to_owned(),
            };
            return Err(self.unavailable(verb, format!("failed ({how}){stderr}")));
        }
        let output = output.unwrap_or_default();
        if output.len() > MAX_OUTPUT {
            return Err(self.unavailable(verb, format!("printed more than {MAX_OUTPUT} bytes")));
        }
        let text = output.trim_ascii();
        if text.is_empty() {
            return Err(self.unavailable(verb, format!("printed nothing{stderr}")));
        }
        B64.decode(text).map(Zeroizing::new).map_err(|_| {
            self.unavailable(
                verb,
                "printed something that is not one line of base64".to_owned(),
            )
        })
    }

    fn unavailable(&self, verb: &str, what: String) -> Error {
        Error::new(
            ErrorCode::KeyUnavailable,
            format!("the key command {} ({verb}) {what}", self.program.display()),
        )
    }
}

impl KeyWrapper for CommandWrapper {
    fn describe(&self) -> String {
        format!("command:{}", self.program.display())
    }

    fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut wrapped = self.run("wrap", aad, plaintext)?;
        Ok(std::mem::take(&mut *wrapped))
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.run("unwrap", aad, wrapped)
    }
}

/// Reads `from` to its end into a wiped buffer, keeping at most `cap + 1` bytes (the rest is
/// drained so the writer never blocks).
fn read_capped(from: &mut impl Read, cap: usize) -> Zeroizing<Vec<u8>> {
    let mut kept = Zeroizing::new(Vec::with_capacity(cap + 1));
    let _ = from.take(cap as u64 + 1).read_to_end(&mut kept);
    let _ = std::io::copy(from, &mut std::io::sink());
    kept
}

/// Writes the input line and closes the pipe, with SIGPIPE blocked on this thread so a
/// program that exited early cannot kill a host that did not ignore the signal.
fn write_line(mut stdin: ChildStdin, line: &[u8]) -> std::io::Result<()> {
    // SAFETY: the signal sets are initialised by sigemptyset before use; pthread_sigmask
    // only changes this thread's mask, restored below.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let was_pending = pending_sigpipe();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        let written = stdin.write_all(line);
        drop(stdin);
        if !was_pending && pending_sigpipe() {
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::sigtimedwait(&pipe, std::ptr::null_mut(), &zero);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        written
    }
}

/// Whether a SIGPIPE is pending for this thread.
fn pending_sigpipe() -> bool {
    // SAFETY: sigpending fills the set it is given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut set);
        libc::sigismember(&set, libc::SIGPIPE) == 1
    }
}

/// Waits until process `pid` has exited, leaving it unreaped (its id stays reserved, so
/// the owner of its [`Child`] can still kill and reap it safely).
fn wait_without_reaping(pid: u32) -> bool {
    loop {
        // SAFETY: waitid writes into the zeroed siginfo it is given.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Kills the child's process group and reaps the child (no zombie is left).
fn kill_and_reap(child: &mut Child) {
    // The child is not reaped yet, so its id (and group id) still names it.
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill only sends a signal.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// ": <first line of stderr>" (length-capped), or nothing; a line containing the input is
/// withheld.
fn first_line(stderr: &[u8], input_line: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line {
        None => String::new(),
        Some(line) if line.contains(input_line.trim()) => {
            ": (stderr withheld: it echoes the input)".to_owned()
        }
        Some(line) => {
            let capped: String = line.chars().take(MAX_STDERR_LINE).collect();
            format!(": {capped}")
        }
    }
}
