//! Container log files in the CRI format (what containerd writes and the kubelet serves):
//! one line per output line, `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <text>`, where `P`
//! marks a partial line (a line longer than [`MAX_LINE`] is split, the last piece is `F`).
//!
//! Start at [`spawn_copier`]: one thread per container copies its stdout and stderr pipes (the
//! read ends of two FIFOs, see `process`) into its log file, as containerd's shim and CRI
//! plugin do. A pipe gives back-pressure: a container writing faster than the copy blocks in
//! `write`, so nothing unbounded sits between the container and its log, and the copying never
//! runs on the async threads.
//!
//! [`LogWriter`] bounds the files as the kubelet's container log manager does
//! (`pkg/kubelet/logs/container_log_manager.go`), with the same names and the kubelet's
//! defaults ([`RotatePolicy`]: `containerLogMaxSize` 10 MiB, `containerLogMaxFiles` 5): when
//! the current file `N.log` would exceed the size it is renamed to `N.log.<YYYYMMDD-HHMMSS>`,
//! rotated files beyond `max_files - 2` are removed oldest first, the older rotated files are
//! gzipped (`N.log.<ts>.gz`) and a new `N.log` starts — so at most `max_files` files. Unlike the
//! kubelet (which looks every 10 s and lets a file grow past the size meanwhile) the check is
//! made on every write, so the bound holds while a container writes; the timestamp is UTC.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Default size bound of one log file (the kubelet's `containerLogMaxSize`, 10 MiB).
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;

/// Default number of files per container instance (the kubelet's `containerLogMaxFiles`).
pub const DEFAULT_MAX_FILES: usize = 5;

/// Mode of log files (readable by the owner's group, as the kubelet's are).
const LOG_MODE: u32 = 0o640;

/// Records are written in batches of about this many bytes (and at the end of every read).
const WRITE_BATCH: usize = 64 * 1024;

/// Bytes read from a pipe at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Longest line piece written as one log line (containerd's 16 KiB buffer).
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The CRI tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One parsed CRI log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The timestamp text (RFC3339Nano).
    pub timestamp: &'a str,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// Whether the line continues in the next record (`P`).
    pub partial: bool,
    /// The text, without the newline.
    pub text: &'a [u8],
}

/// Parses one line of a CRI log file (without its trailing newline); `None` if malformed.
pub fn parse_line(line: &[u8]) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or_default();
    let partial = match tag {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(LogLine {
        timestamp,
        stream,
        partial,
        text,
    })
}

/// The current time as Go's `time.RFC3339Nano` prints it in UTC (trailing zeros trimmed).
/// Records read from a pipe at once share one timestamp.
pub fn now_rfc3339_nano() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut out = format!("{now:.0}");
    out.pop(); // the 'Z'
    let nanos = now.subsec_nanosecond();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// How a container's log files are bounded (the kubelet's `containerLogMaxSize` and
/// `containerLogMaxFiles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotatePolicy {
    /// Size at which the current file is rotated.
    pub max_size: u64,
    /// Files kept per instance, the current one included (at least 2, as the kubelet demands).
    pub max_files: usize,
}

impl Default for RotatePolicy {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// A container instance's CRI log file, rotated as it is written (see the module docs).
/// Blocking I/O: used from the copier thread only.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    /// Bytes in the current file.
    written: u64,
    /// Records not written yet (at most about [`WRITE_BATCH`]).
    buf: Vec<u8>,
    policy: RotatePolicy,
    /// Whether the last write failed (warned once until one succeeds).
    failing: bool,
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)
}

impl LogWriter {
    /// Opens (appends to) the log file at `path`.
    pub fn open(path: &Path, policy: RotatePolicy) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_log(path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            file: Some(file),
            written,
            failing: false,
            ..Self::closed(path, policy)
        })
    }

    /// A writer whose file could not be opened: it tries again at every write.
    pub fn closed(path: &Path, policy: RotatePolicy) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
            written: 0,
            buf: Vec::with_capacity(WRITE_BATCH + MAX_LINE + 64),
            policy: RotatePolicy {
                max_size: policy.max_size.max(1024),
                max_files: policy.max_files.max(2),
            },
            failing: true,
        }
    }

    /// Appends one record stamped `ts`. Write errors are logged and the records dropped: a
    /// full disk must not stop the container.
    pub fn write_record(&mut self, ts: &str, stream: Stream, partial: bool, text: &[u8]) {
        let len = ts.len() + stream.as_str().len() + text.len() + 4;
        let size = self.written + self.buf.len() as u64;
        if size > 0 && size + len as u64 > self.policy.max_size {
            self.rotate();
        }
        self.buf.extend_from_slice(ts.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(stream.as_str().as_bytes());
        self.buf
            .extend_from_slice(if partial { b" P " } else { b" F " });
        self.buf.extend_from_slice(text);
        self.buf.push(b'\n');
        if self.buf.len() >= WRITE_BATCH {
            self.flush();
        }
    }

    /// Writes the buffered records.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if self.file.is_none() {
            let reopened = self
                .path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    let f = open_log(&self.path)?;
                    Ok((f.metadata()?.len(), f))
                });
            if let Ok((len, f)) = reopened {
                self.written = len;
                self.file = Some(f);
            }
        }
        let res = match &mut self.file {
            Some(f) => f.write_all(&self.buf),
            None => Err(std::io::Error::other("the log file cannot be opened")),
        };
        match res {
            Ok(()) => {
                self.written += self.buf.len() as u64;
                self.failing = false;
            }
            Err(e) if !self.failing => {
                self.failing = true;
                tracing::warn!(path = %self.path.display(), error = %e, "log write failed; dropping output until a write succeeds");
            }
            Err(_) => {}
        }
        self.buf.clear();
    }

    /// The kubelet's `rotateLog`: clean up, drop excess files, compress, rename the current.
    fn rotate(&mut self) {
        self.flush();
        self.file = None;
        if let Err(e) = rotate_files(&self.path, self.policy.max_files) {
            tracing::warn!(path = %self.path.display(), error = %e, "log rotation failed");
        }
        match open_log(&self.path) {
            Ok(f) => {
                self.written = f.metadata().map_or(0, |m| m.len());
                self.file = Some(f);
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "log reopen failed");
                self.written = 0;
            }
        }
    }
}

/// The restart count a container's next instance takes when its runtime record is gone (the
/// kubelet's `calcRestartCountByLogDir`, for a node that restarted): one more than the highest
/// `N` of the files `N.log` and `N.log.<suffix>` in its log directory, 0 if there are none (or
/// no directory). Reads the directory: call it off the async threads.
pub fn restart_count_from_dir(dir: &Path) -> i32 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut count = 0;
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let digits = name.bytes().take_while(u8::is_ascii_digit).count();
        let rest = &name[digits..];
        if digits == 0 || !(rest == ".log" || rest.starts_with(".log.")) {
            continue;
        }
        if let Ok(n) = name[..digits].parse::<i32>() {
            count = count.max(n.saturating_add(1));
        }
    }
    count
}

/// The rotated files of the log at `path` (`<path>.*`), sorted oldest first (their names end
/// in a timestamp).
pub fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn rotate_files(path: &Path, max_files: usize) -> std::io::Result<()> {
    let ts = k8s_openapi::jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S");
    let mut target = path.as_os_str().to_owned();
    target.push(format!(".{ts}"));
    let target = PathBuf::from(target);
    let mut target_gz = target.clone().into_os_string();
    target_gz.push(".gz");
    // A file rotated earlier in this same second has the name the current one takes now: a
    // writer that fast loses that older part (the kubelet, looking every 10 s, never meets this).
    for p in [&target, Path::new(&target_gz)] {
        remove_if_present(p)?;
    }
    let all = rotated_files(path);
    // Temporary files and files already compressed are leftovers of an interrupted rotation.
    let has = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        all.iter().any(|q| q.as_os_str() == s)
    };
    let mut inuse = Vec::new();
    for p in &all {
        let ext = p.extension().and_then(|e| e.to_str());
        if ext == Some("tmp") || (ext != Some("gz") && has(p, ".gz")) {
            remove_if_present(p)?;
        } else {
            inuse.push(p.clone());
        }
    }
    // The current file and the one rotated now leave room for `max_files - 2` older ones.
    let excess = inuse.len().saturating_sub(max_files.saturating_sub(2));
    for p in inuse.drain(..excess) {
        remove_if_present(&p)?;
    }
    for p in inuse {
        if p.extension().and_then(|e| e.to_str()) != Some("gz") {
            compress(&p)?;
        }
    }
    std::fs::rename(path, target)
}

fn remove_if_present(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Gzips `p` to `p.gz` (through `p.tmp`, as the kubelet does) and removes `p`.
fn compress(p: &Path) -> std::io::Result<()> {
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut gz = p.as_os_str().to_owned();
    gz.push(".gz");
    let written = (|| {
        let mut src = File::open(p)?;
        let dst = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(LOG_MODE)
            .open(&tmp)?;
        let mut enc = flate2::write::GzEncoder::new(dst, flate2::Compression::default());
        std::io::copy(&mut src, &mut enc)?;
        enc.finish()?;
        std::fs::rename(&tmp, &gz)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::remove_file(p)
}

/// Splits one stream's bytes into CRI records: complete lines as `F`, pieces of a line longer
/// than [`MAX_LINE`] as `P`, and (at the end) a trailing fragment without a newline as `P`, as
/// containerd's `redirectLogs` does ("it should be treated as a partial line"): `kubectl logs`
/// and a `FallbackToLogsOnError` message then show no newline the container did not write.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes read at `ts`; writes every record they complete.
    pub fn feed(&mut self, data: &[u8], ts: &str, stream: Stream, w: &mut LogWriter) {
        let mut rest = data;
        // A line started in an earlier read is completed in `pending` first.
        if !self.pending.is_empty() {
            match rest.iter().position(|b| *b == b'\n') {
                Some(pos) => {
                    self.pending.extend_from_slice(&rest[..pos]);
                    let line = std::mem::take(&mut self.pending);
                    write_line(&line, ts, stream, w);
                    rest = &rest[pos + 1..];
                }
                None => {
                    self.pending.extend_from_slice(rest);
                    rest = &[];
                }
            }
            let mut start = 0;
            while self.pending.len() - start >= MAX_LINE {
                w.write_record(ts, stream, true, &self.pending[start..start + MAX_LINE]);
                start += MAX_LINE;
            }
            self.pending.drain(..start);
        }
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            write_line(&rest[..pos], ts, stream, w);
            rest = &rest[pos + 1..];
        }
        while rest.len() >= MAX_LINE {
            w.write_record(ts, stream, true, &rest[..MAX_LINE]);
            rest = &rest[MAX_LINE..];
        }
        self.pending.extend_from_slice(rest);
    }

    /// Writes what is left (a last line without a newline, so partial).
    pub fn finish(&mut self, ts: &str, stream: Stream, w: &mut LogWriter) {
        if !self.pending.is_empty() {
            w.write_record(ts, stream, true, &self.pending);
            self.pending.clear();
        }
    }
}

/// One complete line: `F`, or `P` pieces of [`MAX_LINE`] then a last `F`.
fn write_line(line: &[u8], ts: &str, stream: Stream, w: &mut LogWriter) {
    if line.is_empty() {
        w.write_record(ts, stream, false, b"");
    }
    for (i, chunk) in line.chunks(MAX_LINE).enumerate() {
        let last = (i + 1) * MAX_LINE >= line.len();
        w.write_record(ts, stream, !last, chunk);
    }
}

/// The running copy of one container's output (see [`spawn_copier`]). Dropping it without
/// [`CopierHandle::finish`] detaches: the copier stops at once and leaves the pipes (and a
/// line it had only begun) to the next agent, as if this one had died.
#[derive(Debug)]
pub struct CopierHandle {
    wake: Option<OwnedFd>,
    finish: Arc<AtomicBool>,
    done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl CopierHandle {
    /// The container has exited: copies what is left in its pipes, writes unfinished lines as
    /// partial records and returns when the log is complete.
    pub async fn finish(mut self) {
        self.finish.store(true, Ordering::SeqCst);
        self.wake = None;
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

/// The read ends of a container's stdout and stderr (non-blocking), and its log.
#[derive(Debug)]
pub struct CopierInput {
    /// Standard output.
    pub stdout: File,
    /// Standard error.
    pub stderr: File,
    /// The instance's log file.
    pub writer: LogWriter,
    /// Live output for `kubectl attach`: every chunk read, as read. Sending never blocks: an
    /// attach client that falls behind by more than the channel holds loses the oldest
    /// chunks (the log keeps them). Dropped when the copier ends, which ends the sessions.
    pub tap: Option<tokio::sync::broadcast::Sender<(Stream, bytes::Bytes)>>,
}

/// Starts the thread that copies a container's output into its log until both pipes are at
/// end of file (every writer is gone) or [`CopierHandle::finish`] is called. It first takes an
/// exclusive lock on the stdout pipe, so a container adopted by a second agent of the same
/// process is copied by one of them only.
pub fn spawn_copier(input: CopierInput) -> std::io::Result<CopierHandle> {
    let (wake_r, wake_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let finish = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let flag = finish.clone();
    std::thread::Builder::new()
        .name("paddock-log".into())
        .spawn(move || {
            copy(input, &wake_r, &flag);
            let _ = tx.send(());
        })?;
    Ok(CopierHandle {
        wake: Some(wake_w),
        finish,
        done: Some(rx),
    })
}

/// Waits up to `ms` for the wake pipe; whether it was signalled (finish or detach).
fn woken(wake: &OwnedFd, ms: u16) -> bool {
    use nix::poll::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, ms), Ok(n) if n > 0)
}

fn copy(input: CopierInput, wake: &OwnedFd, finish: &AtomicBool) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let CopierInput {
        stdout,
        stderr,
        mut writer,
        tap,
    } = input;
    let tap = tap.as_ref();
    // The lock is on the open pipe (a duplicate shares it) and goes when the thread ends.
    let mut lock = match stdout.try_clone() {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "log copier cannot lock its pipe");
            return;
        }
    };
    // A copier told to finish while the previous one still holds the pipe waits a little for
    // it (a detached copier is on its way out), so the container's last output is not lost.
    let mut finishing_waits = 0;
    let _lock = loop {
        match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(held) => break held,
            Err((f, _)) => {
                lock = f;
                if woken(wake, 100) {
                    if !finish.load(Ordering::SeqCst) || finishing_waits >= 500 {
                        return;
                    }
                    finishing_waits += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
    };
    let mut pipes = [
        (Some(stdout), Stream::Stdout, LineSplitter::default()),
        (Some(stderr), Stream::Stderr, LineSplitter::default()),
    ];
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let (woke, ready) = {
            let mut fds = vec![PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
            let mut which = Vec::new();
            for (i, (f, _, _)) in pipes.iter().enumerate() {
                if let Some(f) = f {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    which.push(i);
                }
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "log copier poll failed");
                    break;
                }
            }
            let fired = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
            let ready: Vec<usize> = which
                .iter()
                .zip(&fds[1..])
                .filter(|(_, fd)| fired(fd))
                .map(|(i, _)| *i)
                .collect();
            (fired(&fds[0]), ready)
        };
        if woke && !finish.load(Ordering::SeqCst) {
            // Detached: complete records are kept, an unfinished line is the next agent's, and
            // so is whatever is in the pipes now (the wake came first: reading it here would
            // lose it for the next copier).
            writer.flush();
            return;
        }
        for i in ready {
            read_once(&mut pipes[i], &mut buf, &mut writer, tap);
        }
        if woke {
            // The container is gone: what is in the pipes is all there is (bounded, in case
            // something still writes).
            for pipe in &mut pipes {
                for _ in 0..256 {
                    if pipe.0.is_none() || !read_once(pipe, &mut buf, &mut writer, tap) {
                        break;
                    }
                }
            }
            break;
        }
        if pipes.iter().all(|p| p.0.is_none()) {
            break;
        }
    }
    let ts = now_rfc3339_nano();
    for (_, stream, splitter) in &mut pipes {
        splitter.finish(&ts, *stream, &mut writer);
    }
    writer.flush();
}

/// One read from a pipe into the log; whether it gave data. End of file closes the pipe.
fn read_once(
    pipe: &mut (Option<File>, Stream, LineSplitter),
    buf: &mut [u8],
    w: &mut LogWriter,
    tap: Option<&tokio::sync::broadcast::Sender<(Stream, bytes::Bytes)>>,
) -> bool {
    let (file, stream, splitter) = pipe;
    let Some(f) = file else { return false };
    match f.read(buf) {
        Ok(0) => {
            *file = None;
            false
        }
        Ok(n) => {
            let ts = now_rfc3339_nano();
            splitter.feed(&buf[..n], &ts, *stream, w);
            w.flush();
            // Copied only while someone is attached: the log path stays copy-free otherwise.
            if let Some(t) = tap.filter(|t| t.receiver_count() > 0) {
                let _ = t.send((*stream, bytes::Bytes::copy_from_slice(&buf[..n])));
            }
            true
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) =>
        {
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "container output read failed");
            *file = None;
            false
        }
    }
}

/// The byte offset where the last `n` records of `data` start.
pub fn tail_offset(data: &[u8], n: i64) -> usize {
    if n < 0 {
        return 0;
    }
    if n == 0 {
        return data.len();
    }
    let mut count = 0;
    // Skip a trailing newline: it ends the last record.
    let end = if data.last() == Some(&b'\n') {
        data.len() - 1
    } else {
        data.len()
    };
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            count += 1;
            if count == n {
                return i + 1;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_lost_container_s_restart_count_follows_its_log_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(restart_count_from_dir(&dir.path().join("absent")), 0);
        assert_eq!(restart_count_from_dir(dir.path()), 0);
        for f in [
            "0.log",
            "2.log.20260101-000000.gz",
            "7.txt",
            "x.log",
            "9log",
        ] {
            std::fs::write(dir.path().join(f), b"").expect("write");
        }
        std::fs::create_dir(dir.path().join("11.log")).expect("mkdir");
        assert_eq!(restart_count_from_dir(dir.path()), 3);
        std::fs::write(dir.path().join("3.log"), b"").expect("write");
        assert_eq!(restart_count_from_dir(dir.path()), 4);
    }

    #[test]
    fn timestamp_is_rfc3339_nano_utc() {
        let ts = now_rfc3339_nano();
        assert!(ts.ends_with('Z'), "{ts}");
        assert_eq!(&ts[4..5], "-");
        assert_eq!(&ts[10..11], "T");
        assert!(
            !ts.trim_end_matches('Z').ends_with('0') || !ts.contains('.'),
            "{ts}"
        );
        assert!(
            k8s_openapi::jiff::Timestamp::from_str_opt(&ts).is_some(),
            "{ts}"
        );
    }

    trait FromStrOpt {
        fn from_str_opt(s: &str) -> Option<k8s_openapi::jiff::Timestamp>;
    }
    impl FromStrOpt for k8s_openapi::jiff::Timestamp {
        fn from_str_opt(s: &str) -> Option<Self> {
            s.parse().ok()
        }
    }

    fn texts(path: &Path) -> Vec<(String, bool, usize)> {
        lines(path)
            .iter()
            .map(|l| parse_line(l.as_bytes()).expect("valid line"))
            .map(|l| (l.stream.to_string(), l.partial, l.text.len()))
            .collect()
    }

    #[test]
    fn splits_lines_marks_partials_and_keeps_a_trailing_fragment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let mut w = LogWriter::open(&path, RotatePolicy::default()).expect("open");
        let long = vec![b'x'; MAX_LINE + 10];
        let mut input = b"one\n\ntwo".to_vec();
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nend");
        // Fed in pieces that cut lines anywhere, as pipe reads do.
        let mut sp = LineSplitter::default();
        for piece in input.chunks(7) {
            sp.feed(piece, "t", Stream::Stderr, &mut w);
        }
        sp.finish("t", Stream::Stderr, &mut w);
        w.flush();
        assert_eq!(
            texts(&path),
            vec![
                ("stderr".into(), false, 3),
                ("stderr".into(), false, 0),
                ("stderr".into(), false, 3),
                ("stderr".into(), true, MAX_LINE),
                ("stderr".into(), false, 10),
                ("stderr".into(), true, 3),
            ]
        );
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rotates_as_it_writes_keeping_max_files_with_older_ones_gzipped() {
        use std::io::Read;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let policy = RotatePolicy {
            max_size: 2048,
            max_files: 4,
        };
        let mut w = LogWriter::open(&path, policy).expect("open");
        let rec = |w: &mut LogWriter, i: u32| {
            w.write_record(
                "2026-01-01T00:00:00Z",
                Stream::Stdout,
                false,
                format!("{i:040}").as_bytes(),
            );
        };
        for i in 0..60 {
            rec(&mut w, i);
        }
        w.flush();
        // Within one second rotations reuse the name: write more after the clock moves on.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        for i in 60..120 {
            rec(&mut w, i);
        }
        w.flush();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        for i in 120..180 {
            rec(&mut w, i);
        }
        w.flush();
        let got = names(dir.path());
        // Sorted: the current file, then the rotated ones oldest first, the newest not gzipped.
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], "0.log");
        assert!(got[1..3].iter().all(|n| n.ends_with(".gz")), "{got:?}");
        assert!(
            got[3].starts_with("0.log.2") && !got[3].ends_with(".gz"),
            "{got:?}"
        );
        for n in &got {
            let len = std::fs::metadata(dir.path().join(n)).expect("meta").len();
            assert!(len <= 2048, "{n}: {len}");
        }
        // The newest records are in the current file, the ones before in the newest rotated
        // file, and the gzipped files hold CRI lines too.
        let last = lines(&path);
        assert!(
            last.last()
                .expect("records")
                .ends_with(&format!("{:040}", 179))
        );
        let mut gz = String::new();
        flate2::read::GzDecoder::new(File::open(dir.path().join(&got[1])).expect("gz"))
            .read_to_string(&mut gz)
            .expect("gunzip");
        assert!(
            gz.lines().all(|l| parse_line(l.as_bytes()).is_some()),
            "{gz}"
        );
        // A leftover temporary file and an uncompressed copy of a gzipped one go at the next
        // rotation.
        std::fs::write(dir.path().join("0.log.19700101-000000.tmp"), "x").expect("tmp");
        let copy = got[1].trim_end_matches(".gz").to_string();
        std::fs::write(dir.path().join(&copy), "x").expect("copy");
        for i in 180..240 {
            rec(&mut w, i);
        }
        w.flush();
        let after = names(dir.path());
        assert!(
            !after.iter().any(|n| n.ends_with(".tmp") || *n == copy),
            "{after:?}"
        );
        assert!(after.len() <= 4, "{after:?}");
    }

    fn fifo(dir: &Path, name: &str) -> (File, File) {
        let path = dir.join(name);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let r = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .expect("reader");
        let w = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("writer");
        (r, w)
    }

    #[tokio::test]
    async fn the_copier_follows_both_pipes_to_their_end_off_the_async_threads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let (out_r, mut out_w) = fifo(dir.path(), "out");
        let (err_r, mut err_w) = fifo(dir.path(), "err");
        let (tap, mut attached) = tokio::sync::broadcast::channel(1024);
        let h = spawn_copier(CopierInput {
            stdout: out_r,
            stderr: err_r,
            writer: LogWriter::open(&path, RotatePolicy::default()).expect("log"),
            tap: Some(tap),
        })
        .expect("copier");
        out_w.write_all(b"a\nb").expect("w");
        err_w.write_all(b"x\n").expect("w");
        drop(err_w);
        // More than a pipe holds: the writer blocks until the copier drains it.
        let big = std::thread::spawn(move || {
            for _ in 0..64 {
                out_w.write_all(&[b'y'; 4095]).expect("w");
                out_w.write_all(b"\n").expect("w");
            }
        });
        big.join().expect("writer");
        // Every writer is gone: the copier ends by itself, the fragment "b…" ends as `P`.
        h.finish().await;
        let got = texts(&path);
        assert_eq!(got.iter().filter(|t| t.0 == "stderr").count(), 1);
        assert_eq!(got.iter().filter(|t| t.0 == "stdout").count(), 65);
        assert_eq!(got[got.len() - 1], ("stdout".into(), false, 4095));
        // An attached reader saw the same bytes live, and its channel ends with the copier.
        let (mut out, mut err) = (0usize, Vec::new());
        loop {
            match attached.recv().await {
                Ok((Stream::Stdout, b)) => out += b.len(),
                Ok((Stream::Stderr, b)) => err.extend_from_slice(&b),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => panic!("lagged {n}"),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        assert_eq!(out, 3 + 64 * 4096);
        assert_eq!(err, b"x\n");
    }

    #[tokio::test]
    async fn a_detached_copier_leaves_the_pipe_to_the_next_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let (out_r, mut out_w) = fifo(dir.path(), "out");
        let (err_r, _err_w) = fifo(dir.path(), "err");
        let open = || LogWriter::open(&path, RotatePolicy::default()).expect("log");
        let first = spawn_copier(CopierInput {
            stdout: out_r,
            stderr: err_r,
            writer: open(),
            tap: None,
        })
        .expect("copier");
        out_w.write_all(b"one\ntw").expect("w");
        for _ in 0..500 {
            if lines(&path).len() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // The agent goes away: "tw" is lost with it (as with containerd's CRI plugin), but
        // nothing written after is.
        drop(first);
        out_w.write_all(b"o\nthree\n").expect("w");
        let reopen = |name: &str| {
            OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(dir.path().join(name))
                .expect("reopen")
        };
        let second = spawn_copier(CopierInput {
            stdout: reopen("out"),
            stderr: reopen("err"),
            writer: open(),
            tap: None,
        })
        .expect("copier");
        drop(out_w);
        drop(_err_w);
        second.finish().await;
        let got: Vec<String> = lines(&path)
            .iter()
            .map(|l| {
                String::from_utf8_lossy(parse_line(l.as_bytes()).expect("line").text).into_owned()
            })
            .collect();
        assert!(
            got == ["one", "o", "three"] || got == ["one", "two", "three"],
            "{got:?}"
        );
    }
}
