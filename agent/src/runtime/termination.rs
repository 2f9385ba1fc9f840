//! Termination messages (`terminationMessagePath` / `terminationMessagePolicy`), built exactly as
//! the kubelet does (pkg/kubelet/kuberuntime/kuberuntime_container.go): [`Termination::message`]
//! is `convertToKubeContainerStatus` — the file message (`getTerminationMessage`: the last
//! [`MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH`] bytes of the container's termination-log file),
//! else, only when that is empty, the policy is `FallbackToLogsOnError` and the container failed,
//! the end of its log (`readLastStringFromContainerLogs`: [`MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES`]
//! lines, the last [`MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH`] bytes of their text), appended
//! to the runtime's own message after `": "`.
//!
//! The file itself is a node file per container instance under the pod's directory, bind-mounted
//! read-write at `terminationMessagePath` in the container's mount namespace (see
//! `volumes::plan_mounts`). Without a mount namespace (host mode) there is no file, which is
//! upstream's path when the kubelet could not create it: no mount, so only the log fallback.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Exited, TerminationMessagePolicy};

/// The most bytes one pod's containers may carry as termination messages in its status
/// (upstream `MaxPodTerminationMessageLogLength`): the kubelet's status manager cuts each
/// container's message to this divided by the number of (init) containers (`normalizeStatus`).
pub const MAX_POD_TERMINATION_MESSAGE_LOG_LENGTH: usize = 1024 * 12;

/// How much of the termination-log file is read: its last 4 KiB
/// (upstream `MaxContainerTerminationMessageLength`).
pub const MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH: u64 = 1024 * 4;

/// How much of the log a fallback message keeps: its last 2 KiB
/// (upstream `MaxContainerTerminationMessageLogLength`).
pub const MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH: usize = 1024 * 2;

/// How many log lines a fallback message is read from
/// (upstream `MaxContainerTerminationMessageLogLines`).
pub const MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES: usize = 80;

/// The longest CRI log line (timestamp, stream, tag and at most [`super::logs::MAX_LINE`] bytes
/// of text), so reading this many lines' worth from the end of a file always covers them.
const MAX_CRI_LINE: u64 = super::logs::MAX_LINE as u64 + 128;

/// A container instance's termination-message settings, recorded with it (so an agent that
/// adopts the container after a restart still reads the file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Termination {
    /// The node file mounted at `terminationMessagePath` (`None`: nothing was mounted).
    pub(crate) file: Option<PathBuf>,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    pub(crate) fallback_to_logs: bool,
}

impl Termination {
    /// The settings for a container started with `policy`, its file at `file` (if mounted).
    pub(crate) fn new(file: Option<PathBuf>, policy: TerminationMessagePolicy) -> Self {
        Self {
            file,
            fallback_to_logs: policy == TerminationMessagePolicy::FallbackToLogsOnError,
        }
    }

    /// Completes `exited.message` with the termination message (upstream
    /// `convertToKubeContainerStatus`), reading the file and, when it applies, the CRI log at
    /// `log_path`. Blocking file I/O, bounded.
    pub(crate) fn complete(&self, exited: &mut Exited, log_path: &Path) {
        // A container that could not even start has no logs (upstream's `ContainerCannotRun`).
        let fallback =
            self.fallback_to_logs && exited.exit_code != 0 && exited.reason != "ContainerCannotRun";
        let (mut text, check_logs) = file_message(self.file.as_deref(), fallback);
        if check_logs {
            text = log_tail_message(log_path);
        }
        if !text.is_empty() {
            let message = exited.message.get_or_insert_with(String::new);
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }

    /// Removes the node file (once its message is read, or when the container is forgotten).
    pub(crate) fn remove(&self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Upstream `getTerminationMessage`: the file's message, and whether the logs should be read
/// instead (only when the file is empty or missing and `fallback` holds).
pub(crate) fn file_message(file: Option<&Path>, fallback: bool) -> (String, bool) {
    let Some(path) = file else {
        return (String::new(), fallback);
    };
    match read_at_most(path, MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH) {
        Ok(data) => {
            let empty = data.is_empty();
            (go_string(&data), fallback && empty)
        }
        Err((_, e)) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), fallback),
        Err((op, e)) => (
            format!(
                "Error on reading termination log {p}: {op} {p}: {}",
                gofmt::errno_text(&e),
                p = path.display()
            ),
            false,
        ),
    }
}

/// Upstream `tail.ReadAtMost`: the last `max` bytes of the file. An error names the failing
/// operation as Go's `*PathError` does (`open`, `seek`, `read`).
pub(crate) fn read_at_most(
    path: &Path,
    max: u64,
) -> Result<Vec<u8>, (&'static str, std::io::Error)> {
    let mut f = std::fs::File::open(path).map_err(|e| ("open", e))?;
    let size = f.metadata().map_err(|e| ("stat", e))?.len();
    let want = size.min(max);
    f.seek(SeekFrom::End(-i64::try_from(want).unwrap_or(0)))
        .map_err(|e| ("seek", e))?;
    let mut data = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    f.take(max)
        .read_to_end(&mut data)
        .map_err(|e| ("read", e))?;
    Ok(data)
}

/// Upstream `readLastStringFromContainerLogs`: the text of the log's last
/// [`MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES`] lines (stdout and stderr, a full line ending
/// in a newline), of which the last [`MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH`] bytes.
pub(crate) fn log_tail_message(path: &Path) -> String {
    match log_tail(path) {
        Ok(mut out) => {
            if out.len() > MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH {
                out.drain(..out.len() - MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH);
            }
            go_string(&out)
        }
        Err(e) => format!("Error on reading termination message from logs: {e}"),
    }
}

/// The text of the last lines of a CRI log file, with upstream `ReadLogs`' error texts.
fn log_tail(path: &Path) -> Result<Vec<u8>, String> {
    let p = path.display();
    // `ReadLogs` resolves symlinks first, so a missing file fails there.
    if let Err(e) = std::fs::symlink_metadata(path) {
        return Err(format!(
            "failed to try resolving symlinks in path \"{p}\": lstat {p}: {}",
            gofmt::errno_text(&e)
        ));
    }
    let window = MAX_CRI_LINE * MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES as u64;
    let data = read_at_most(path, window).map_err(|(op, e)| match op {
        "open" => format!(
            "failed to open log file \"{p}\": open {p}: {}",
            gofmt::errno_text(&e)
        ),
        _ => format!(
            "failed to read log file \"{p}\": {op} {p}: {}",
            gofmt::errno_text(&e)
        ),
    })?;
    // Upstream `tail.FindTailLineStartIndex`, the same search as `kubectl logs --tail`.
    let start = super::logs::tail_offset(&data, MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LINES as i64);
    let mut out = Vec::new();
    for line in data[start..].split(|b| *b == b'\n') {
        // Lines that do not parse are skipped, as `ReadLogs` does.
        let Some(rec) = super::logs::parse_line(line) else {
            continue;
        };
        out.extend_from_slice(rec.text);
        if !rec.partial {
            out.push(b'\n');
        }
    }
    Ok(out)
}

/// A terminated state's message as the kubelet's status manager stores it (`normalizeStatus`,
/// for `state` and `lastState` of every container, init and ephemeral container status): at
/// most [`MAX_POD_TERMINATION_MESSAGE_LOG_LENGTH`] divided by `containers` (the pod's
/// containers plus init containers, when non-zero) bytes. Go cuts the bytes, so a character
/// cut in two shows as U+FFFD per remaining byte.
pub fn normalize_message(message: &str, containers: usize) -> String {
    let max = MAX_POD_TERMINATION_MESSAGE_LOG_LENGTH / containers.max(1);
    match message.as_bytes().get(..max) {
        Some(cut) if cut.len() < message.len() => go_string(cut),
        _ => message.to_string(),
    }
}

/// Bytes as the API shows a Go string holding them: Go's JSON encoding replaces every byte
/// that does not start a valid UTF-8 sequence with U+FFFD, one per byte.
pub(crate) fn go_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(&String::from_utf8_lossy(good));
                out.push('\u{FFFD}');
                rest = bad.get(1..).unwrap_or_default();
            }
        }
    }
}

#[cfg(test)]
mod tests;
