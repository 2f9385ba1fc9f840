//! Container log files in the CRI format (what containerd writes and the kubelet serves):
//! one line per output line, `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <text>`, where `P`
//! marks a partial line (a line longer than [`MAX_LINE`] is split, the last piece is `F`).
//!
//! A file is bounded: at [`DEFAULT_MAX_SIZE`] bytes it is renamed to `<path>.1` (replacing an
//! older one) and a new file starts, so at most two files of that size exist per instance.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Default size bound of one log file (the kubelet's `containerLogMaxSize`, 10 MiB).
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;

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

/// A log file's mode: the kubelet's 0640 (a log may hold anything a container prints).
const LOG_MODE: u32 = 0o640;

/// A size-bounded CRI log file shared by a container's stdout and stderr readers.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: u64,
}

impl LogWriter {
    /// Opens (appends to) the log file at `path`, rotating at `max_size` bytes.
    pub fn open(path: &Path, max_size: u64) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(LOG_MODE)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            size,
            max_size: max_size.max(1024),
        })
    }

    /// Appends one record. Write errors are logged and dropped: a full disk must not kill the
    /// container.
    pub fn write_record(&mut self, stream: Stream, partial: bool, text: &[u8]) {
        let mut rec = Vec::with_capacity(text.len() + 48);
        rec.extend_from_slice(now_rfc3339_nano().as_bytes());
        rec.push(b' ');
        rec.extend_from_slice(stream.as_str().as_bytes());
        rec.extend_from_slice(if partial { b" P " } else { b" F " });
        rec.extend_from_slice(text);
        rec.push(b'\n');
        if self.size > 0 && self.size + rec.len() as u64 > self.max_size {
            self.rotate();
        }
        if let Some(f) = &mut self.file {
            match f.write_all(&rec) {
                Ok(()) => self.size += rec.len() as u64,
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "log write failed")
                }
            }
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(".1");
        if let Err(e) = std::fs::rename(&self.path, &rotated) {
            tracing::warn!(path = %self.path.display(), error = %e, "log rotation failed");
        }
        match OpenOptions::new()
            .create(true)
            .append(true)
            .truncate(false)
            .mode(LOG_MODE)
            .open(&self.path)
        {
            Ok(f) => {
                self.file = Some(f);
                self.size = 0;
            }
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "log reopen failed"),
        }
    }
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
    /// Feeds bytes; writes every record they complete.
    pub fn feed(&mut self, data: &[u8], stream: Stream, w: &mut LogWriter) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let line = &self.pending[start..start + pos];
            if line.is_empty() {
                w.write_record(stream, false, b"");
            }
            for (i, chunk) in line.chunks(MAX_LINE).enumerate() {
                let last = (i + 1) * MAX_LINE >= line.len();
                w.write_record(stream, !last, chunk);
            }
            start += pos + 1;
        }
        while self.pending.len() - start >= MAX_LINE {
            w.write_record(stream, true, &self.pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        self.pending.drain(..start);
    }

    /// Writes what is left (a last line without a newline, so partial).
    pub fn finish(&mut self, stream: Stream, w: &mut LogWriter) {
        if !self.pending.is_empty() {
            w.write_record(stream, true, &self.pending);
            self.pending.clear();
        }
    }
}

/// Copies `pipe` into `writer` as CRI records until end of file.
pub async fn copy_stream(
    mut pipe: impl AsyncRead + Unpin,
    stream: Stream,
    writer: Arc<Mutex<LogWriter>>,
) {
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        splitter.feed(&buf[..n], stream, &mut writer.lock());
    }
    splitter.finish(stream, &mut writer.lock());
}

/// Bytes of a raw output file already turned into log records before they are released
/// (hole-punched), so the raw files stay small while their offsets only grow.
const RELEASE_AFTER: u64 = 1024 * 1024;

/// One raw output file a container writes to directly (opened `O_APPEND`), so it never blocks
/// on or dies with the agent: [`RawTail`] turns it into log records.
#[derive(Debug)]
struct RawFile {
    path: PathBuf,
    stream: Stream,
    offset: u64,
    released: u64,
    splitter: LineSplitter,
}

/// Follows a container's raw stdout and stderr files into its CRI log file. The offsets it has
/// consumed are kept in `<state>` so a restarted agent resumes where the last one stopped.
#[derive(Debug)]
pub struct RawTail {
    files: Vec<RawFile>,
    state: PathBuf,
    writer: Arc<Mutex<LogWriter>>,
}

impl RawTail {
    /// Follows `stdout` and `stderr` from the offsets saved in `state` (0 when none).
    pub fn new(
        stdout: PathBuf,
        stderr: PathBuf,
        state: PathBuf,
        writer: Arc<Mutex<LogWriter>>,
    ) -> Self {
        let saved: Vec<u64> = std::fs::read_to_string(&state)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect();
        let file = |path, stream, i: usize| {
            let offset = saved.get(i).copied().unwrap_or(0);
            RawFile {
                path,
                stream,
                offset,
                released: 0,
                splitter: LineSplitter::default(),
            }
        };
        Self {
            files: vec![
                file(stdout, Stream::Stdout, 0),
                file(stderr, Stream::Stderr, 1),
            ],
            state,
            writer,
        }
    }

    /// Reads whatever was appended since the last call; whether anything was.
    pub fn poll(&mut self) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let mut any = false;
        let mut buf = vec![0u8; 64 * 1024];
        for f in &mut self.files {
            // Opened for writing too: releasing consumed bytes (hole punching) needs it.
            let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&f.path) else {
                continue;
            };
            if file.seek(SeekFrom::Start(f.offset)).is_err() {
                continue;
            }
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                any = true;
                f.offset += n as u64;
                f.splitter
                    .feed(&buf[..n], f.stream, &mut self.writer.lock());
            }
            if f.offset - f.released >= RELEASE_AFTER {
                let upto = f.offset - f.offset % 4096;
                let punched = nix::fcntl::fallocate(
                    &file,
                    nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                        | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
                    0,
                    i64::try_from(upto).unwrap_or(i64::MAX),
                );
                if punched.is_ok() {
                    f.released = upto;
                }
            }
        }
        if any {
            // Save offsets at line starts: a restarted agent re-reads an unfinished line.
            let at = |f: &RawFile| f.offset - f.splitter.pending.len() as u64;
            let text = format!("{} {}", at(&self.files[0]), at(&self.files[1]));
            let _ = std::fs::write(&self.state, text);
        }
        any
    }

    /// Reads the rest and writes trailing fragments (the container has exited).
    pub fn finish(&mut self) {
        self.poll();
        let mut w = self.writer.lock();
        for f in &mut self.files {
            f.splitter.finish(f.stream, &mut w);
        }
    }

    /// Follows the files until `done` resolves, then finishes.
    pub async fn follow(mut self, done: impl std::future::Future<Output = ()>) {
        tokio::pin!(done);
        let mut idle = 0u32;
        loop {
            // Fast while output flows, slower (up to 200 ms) when the container is quiet.
            let wait = Duration::from_millis(if idle < 10 { 10 } else { 200 });
            tokio::select! {
                () = &mut done => break,
                () = tokio::time::sleep(wait) => {}
            }
            if self.poll() {
                idle = 0;
            } else {
                idle = idle.saturating_add(1);
            }
        }
        self.finish();
    }
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

    #[tokio::test]
    async fn splits_lines_marks_partials_and_keeps_a_trailing_fragment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let w = Arc::new(Mutex::new(
            LogWriter::open(&path, DEFAULT_MAX_SIZE).expect("open"),
        ));
        let long = vec![b'x'; MAX_LINE + 10];
        let mut input = b"one\n\ntwo".to_vec();
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nend");
        copy_stream(&input[..], Stream::Stderr, w).await;
        let got = lines(&path);
        let parsed: Vec<_> = got
            .iter()
            .map(|l| parse_line(l.as_bytes()).expect("valid line"))
            .map(|l| (l.stream.to_string(), l.partial, l.text.len()))
            .collect();
        assert_eq!(
            parsed,
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

    #[test]
    fn rotates_at_the_size_bound_keeping_one_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("0.log");
        let mut w = LogWriter::open(&path, 2048).expect("open");
        for _ in 0..200 {
            w.write_record(
                Stream::Stdout,
                false,
                b"0123456789012345678901234567890123456789",
            );
        }
        let cur = std::fs::metadata(&path).expect("current").len();
        let old = std::fs::metadata(dir.path().join("0.log.1"))
            .expect("rotated")
            .len();
        assert!(cur <= 2048 && old <= 2048, "{cur} {old}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 2);
    }

    #[test]
    fn raw_tail_resumes_from_saved_offsets_and_releases_consumed_bytes() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let (out, err, st) = (
            dir.path().join("o"),
            dir.path().join("e"),
            dir.path().join("s"),
        );
        let log = dir.path().join("0.log");
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .expect("raw")
        };
        let (mut o, mut e) = (open(&out), open(&err));
        let writer = || {
            Arc::new(Mutex::new(
                LogWriter::open(&log, DEFAULT_MAX_SIZE).expect("log"),
            ))
        };
        let mut tail = RawTail::new(out.clone(), err.clone(), st.clone(), writer());
        o.write_all(b"a\nb").expect("w");
        e.write_all(b"x\n").expect("w");
        assert!(tail.poll());
        assert!(!tail.poll());
        drop(tail); // the agent goes away with "b" unfinished
        o.write_all(b"c\nd").expect("w");
        let mut tail = RawTail::new(out.clone(), err.clone(), st.clone(), writer());
        tail.finish();
        let texts: Vec<String> = lines(&log)
            .iter()
            .map(|l| {
                let p = parse_line(l.as_bytes()).expect("line");
                format!("{} {}", p.stream, String::from_utf8_lossy(p.text))
            })
            .collect();
        // "b" was read by the first agent but its line was only completed later: the restarted
        // one reads it again, so nothing is lost or duplicated.
        assert_eq!(texts, vec!["stdout a", "stderr x", "stdout bc", "stdout d"]);
        let big = vec![b'y'; 2 * RELEASE_AFTER as usize];
        o.write_all(&big).expect("w");
        o.write_all(b"\n").expect("w");
        let mut tail = RawTail::new(out.clone(), err, st, writer());
        tail.poll();
        let meta = std::fs::metadata(&out).expect("meta");
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 < RELEASE_AFTER,
            "consumed bytes released: {} blocks",
            meta.blocks()
        );
    }
}
