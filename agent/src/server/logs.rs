//! Serving a container's CRI log file as `kubectl logs` output, with the kubelet's options
//! [pkg/kubelet/kuberuntime/logs/logs.go `ReadLogs`]: `tailLines` (last N records),
//! `sinceSeconds`/`sinceTime` (records at or after), `timestamps` (each line prefixed with its
//! RFC3339Nano time and a space), `limitBytes` (stop after that many bytes) and `follow`
//! (keep reading as the file grows, across a rotation, until the instance has exited and the
//! file is drained).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

use crate::runtime::logs::parse_line;

/// How often a follower looks for new data.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Options of one log request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// `follow`.
    pub follow: bool,
    /// `tailLines`.
    pub tail_lines: Option<i64>,
    /// `timestamps`.
    pub timestamps: bool,
    /// Only records at or after this time (`sinceSeconds` / `sinceTime`).
    pub since: Option<Timestamp>,
    /// `limitBytes`.
    pub limit_bytes: Option<i64>,
}

/// Formats one record for output; `None` when it is filtered out.
pub fn format_record(line: &[u8], opts: &LogOptions) -> Option<Vec<u8>> {
    let rec = parse_line(line)?;
    if let Some(since) = opts.since {
        let ts: Timestamp = rec.timestamp.parse().ok()?;
        if ts < since {
            return None;
        }
    }
    let mut out = Vec::with_capacity(rec.text.len() + 40);
    if opts.timestamps {
        out.extend_from_slice(rec.timestamp.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(rec.text);
    if !rec.partial {
        out.push(b'\n');
    }
    Some(out)
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

/// Streams the log of one container instance into `tx`. `running` tells a follower whether
/// the instance may still write.
pub async fn stream(
    path: PathBuf,
    opts: LogOptions,
    tx: mpsc::Sender<Bytes>,
    running: impl Fn() -> bool + Send + 'static,
) {
    let mut left = opts.limit_bytes.map(|l| usize::try_from(l).unwrap_or(0));
    let start = match opts.tail_lines {
        Some(n) => match tokio::fs::read(&path).await {
            Ok(data) => tail_offset(&data, n) as u64,
            Err(_) => 0,
        },
        None => 0,
    };
    let mut offset = start;
    let mut id = file_id(&path).await;
    loop {
        let (new_offset, done) = match read_from(&path, offset, &opts, &tx, &mut left).await {
            Ok(v) => v,
            Err(_) => (offset, false),
        };
        offset = new_offset;
        if done || !opts.follow || left == Some(0) {
            return;
        }
        // Rotation: a new file under the same name starts from its beginning.
        let now_id = file_id(&path).await;
        if now_id != id {
            id = now_id;
            offset = 0;
            continue;
        }
        if !running() {
            // One last read to drain what was written before the exit.
            let _ = read_from(&path, offset, &opts, &tx, &mut left).await;
            return;
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

async fn file_id(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    tokio::fs::metadata(path).await.ok().map(|m| m.ino())
}

/// Reads complete records from `offset`; returns the new offset and whether the reader should
/// stop (limit reached or the receiver is gone).
async fn read_from(
    path: &Path,
    offset: u64,
    opts: &LogOptions,
    tx: &mpsc::Sender<Bytes>,
    left: &mut Option<usize>,
) -> std::io::Result<(u64, bool)> {
    let mut f = tokio::fs::File::open(path).await?;
    f.seek(SeekFrom::Start(offset)).await?;
    let mut r = BufReader::new(f);
    let mut offset = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).await?;
        if n == 0 || line.last() != Some(&b'\n') {
            // EOF, or a record still being written: read it again next time.
            return Ok((offset, false));
        }
        offset += n as u64;
        line.pop();
        let Some(mut out) = format_record(&line, opts) else {
            continue;
        };
        if let Some(l) = left.as_mut() {
            if out.len() >= *l {
                out.truncate(*l);
                *l = 0;
                let _ = tx.send(Bytes::from(out)).await;
                return Ok((offset, true));
            }
            *l -= out.len();
        }
        if tx.send(Bytes::from(out)).await.is_err() {
            return Ok((offset, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-01-01T00:00:01.5Z stdout F one\n\
                       2026-01-01T00:00:02Z stderr P tw\n\
                       2026-01-01T00:00:02.1Z stderr F o\n\
                       2026-01-01T00:00:03Z stdout F three\n";

    async fn read(opts: LogOptions) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, LOG).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        stream(path, opts, tx, || false).await;
        let mut out = Vec::new();
        while let Some(b) = rx.recv().await {
            out.extend_from_slice(&b);
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn options_like_the_kubelet() {
        assert_eq!(read(LogOptions::default()).await, "one\ntwo\nthree\n");
        let tail = LogOptions {
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(read(tail).await, "three\n");
        let ts = LogOptions {
            timestamps: true,
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(
            read(ts).await,
            "2026-01-01T00:00:02.1Z o\n2026-01-01T00:00:03Z three\n"
        );
        let since = LogOptions {
            since: Some("2026-01-01T00:00:02Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(read(since).await, "two\nthree\n");
        let limit = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(read(limit).await, "one\ntw");
        let none = LogOptions {
            tail_lines: Some(0),
            ..Default::default()
        };
        assert_eq!(read(none).await, "");
    }
}
