//! Serving a container's CRI log file as `kubectl logs` output, with the kubelet's options
//! [pkg/kubelet/kuberuntime/logs/logs.go `ReadLogs`]: `tailLines` (last N records),
//! `sinceSeconds`/`sinceTime` (records at or after), `timestamps` (each line prefixed with its
//! RFC3339Nano time and a space), `limitBytes` (stop after that many bytes) and `follow`
//! (keep reading as the file grows, across a rotation, until the instance has exited and the
//! file is drained). Only the current file of an instance is read, as upstream; a plain read
//! ends at the length the file had when it was asked for, so a container writing faster than
//! a client reads cannot make `kubectl logs` endless. Output goes out in batches of up to
//! 64 KiB, not a message per line.

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

/// Bytes read at a time when searching the end of a file for `tailLines`.
const TAIL_CHUNK: u64 = 64 * 1024;

/// Where the last `n` records of the first `len` bytes of `f` start, read backwards a chunk at a time (memory stays
/// bounded whatever `n` and the file's size).
async fn tail_start(f: &mut tokio::fs::File, len: u64, n: i64) -> std::io::Result<u64> {
    use tokio::io::AsyncReadExt;
    if n < 0 {
        return Ok(0);
    }
    if n == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut count = 0;
    let mut buf = vec![0u8; TAIL_CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(TAIL_CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start)).await?;
        f.read_exact(chunk).await?;
        for i in (0..chunk.len()).rev() {
            // The file's last newline ends the last record; every newline before starts one.
            if chunk[i] == b'\n' && start + i as u64 + 1 != len {
                count += 1;
                if count == n {
                    return Ok(start + i as u64 + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

/// The log file being read: its handle, its inode (to notice a rotation), where the reader is,
/// where it stops (`None`: a follower, at no fixed end) and a record begun but not finished
/// when the reader reached its end.
struct Open {
    reader: BufReader<tokio::fs::File>,
    ino: u64,
    pos: u64,
    end: Option<u64>,
    carry: Vec<u8>,
}

/// Bytes a reader takes from the file at a time, and gathers of output before sending it.
const READ_CHUNK: usize = 64 * 1024;

/// Opens the log at the start of its last `tail` records. Without `follow` the read ends at
/// the file's length now: a container writing faster than the log is read must not make a
/// plain `kubectl logs` endless.
async fn open(path: &Path, tail: Option<i64>, follow: bool) -> Option<Open> {
    use std::os::unix::fs::MetadataExt;
    let mut f = tokio::fs::File::open(path).await.ok()?;
    let meta = f.metadata().await.ok()?;
    let start = match tail {
        Some(n) => tail_start(&mut f, meta.len(), n).await.ok()?,
        None => 0,
    };
    f.seek(SeekFrom::Start(start)).await.ok()?;
    Some(Open {
        reader: BufReader::with_capacity(READ_CHUNK, f),
        ino: meta.ino(),
        pos: start,
        end: (!follow).then_some(meta.len()),
        carry: Vec::new(),
    })
}

/// Whether `path` is now another file than the one open (the log was rotated).
async fn rotated(path: &Path, cur: &Open) -> bool {
    use std::os::unix::fs::MetadataExt;
    tokio::fs::metadata(path)
        .await
        .is_ok_and(|m| m.ino() != cur.ino)
}

/// Streams the log of one container instance into `tx` (its current file, as the kubelet's
/// `ReadLogs` does: rotated files are read only by a follower that was reading them when they
/// were rotated). `running` tells a follower whether the instance may still write; once it
/// may not, the file is read to its end and the stream ends.
pub async fn stream(
    path: PathBuf,
    opts: LogOptions,
    tx: mpsc::Sender<Bytes>,
    running: impl Fn() -> bool + Send + 'static,
) {
    let mut left = opts.limit_bytes.map(|l| usize::try_from(l).unwrap_or(0));
    let mut tail = opts.tail_lines;
    let mut cur: Option<Open> = None;
    loop {
        let last = !opts.follow || !running();
        if cur.is_none() {
            cur = open(&path, tail, opts.follow).await;
            if cur.is_some() {
                tail = None;
            }
        }
        if let Some(c) = &mut cur {
            if read_records(c, &opts, &tx, &mut left).await {
                return;
            }
            // Rotated: the old file is complete (the writer flushed it before the rename), but
            // what it got between our read above and the rename is still to be read; then a
            // follower goes on from the start of the new one.
            if opts.follow && rotated(&path, c).await {
                if read_records(c, &opts, &tx, &mut left).await {
                    return;
                }
                cur = None;
                continue;
            }
        }
        if last || tx.is_closed() {
            return;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// Reads the complete records up to the end of the file (or of what a plain read takes),
/// sending them in batches of up to [`READ_CHUNK`] bytes; whether the reader should stop (its
/// end or limit reached, or the receiver gone).
async fn read_records(
    cur: &mut Open,
    opts: &LogOptions,
    tx: &mpsc::Sender<Bytes>,
    left: &mut Option<usize>,
) -> bool {
    let mut batch = Vec::new();
    let done = loop {
        if cur.end.is_some_and(|end| cur.pos >= end) {
            break true;
        }
        let Ok(n) = cur.reader.read_until(b'\n', &mut cur.carry).await else {
            break false;
        };
        cur.pos += n as u64;
        if n == 0 || cur.carry.last() != Some(&b'\n') {
            // The end, or a record still being written: it is completed next time (a plain
            // read has nothing more to wait for).
            break cur.end.is_some();
        }
        cur.carry.pop();
        let line = std::mem::take(&mut cur.carry);
        let Some(mut out) = format_record(&line, opts) else {
            continue;
        };
        if let Some(l) = left.as_mut() {
            if out.len() >= *l {
                out.truncate(*l);
                *l = 0;
                batch.extend_from_slice(&out);
                break true;
            }
            *l -= out.len();
        }
        batch.extend_from_slice(&out);
        if batch.len() >= READ_CHUNK
            && tx
                .send(Bytes::from(std::mem::take(&mut batch)))
                .await
                .is_err()
        {
            return true;
        }
    };
    if !batch.is_empty() && tx.send(Bytes::from(batch)).await.is_err() {
        return true;
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::logs::tail_offset;

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

    #[tokio::test]
    async fn tail_reads_backwards_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut data = Vec::new();
        for i in 0..20_000 {
            data.extend_from_slice(format!("2026-01-01T00:00:01Z stdout F line {i}\n").as_bytes());
        }
        std::fs::write(&path, &data).unwrap();
        let mut f = tokio::fs::File::open(&path).await.unwrap();
        for n in [-1, 0, 1, 2, 1000, 5000, 19_999, 20_000, 30_000] {
            assert_eq!(
                tail_start(&mut f, data.len() as u64, n).await.unwrap(),
                tail_offset(&data, n) as u64,
                "tailLines {n}"
            );
        }
        // A last record without its newline yet counts as one.
        data.extend_from_slice(b"2026-01-01T00:00:02Z stdout P end");
        std::fs::write(&path, &data).unwrap();
        let mut f = tokio::fs::File::open(&path).await.unwrap();
        for n in [1, 2, 3] {
            assert_eq!(
                tail_start(&mut f, data.len() as u64, n).await.unwrap(),
                tail_offset(&data, n) as u64
            );
        }
    }

    #[tokio::test]
    async fn a_follower_finishes_the_rotated_file_before_the_new_one() {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let append = |p: &Path, text: &str| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap();
            writeln!(f, "2026-01-01T00:00:01Z stdout F {text}").unwrap();
        };
        append(&path, "one");
        let running = std::sync::Arc::new(AtomicBool::new(true));
        let (tx, mut rx) = mpsc::channel(16);
        let follow = LogOptions {
            follow: true,
            ..Default::default()
        };
        let flag = running.clone();
        let task = tokio::spawn(stream(path.clone(), follow, tx, move || {
            flag.load(Ordering::SeqCst)
        }));
        assert_eq!(rx.recv().await.unwrap(), "one\n");
        // Written after the follower's last read, then rotated away (the writer renames a
        // complete file), then a new file.
        append(&path, "two");
        append(&path, "three");
        let rotated = dir.path().join("0.log.20260101-000001");
        std::fs::rename(&path, &rotated).unwrap();
        append(&path, "four");
        // Batched as they are read: what matters is the order.
        let mut got = String::new();
        while got.len() < "two\nthree\nfour\n".len() {
            let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            let Ok(Some(b)) = next else {
                panic!("the follower stopped after {got:?}");
            };
            got.push_str(std::str::from_utf8(&b).unwrap());
        }
        assert_eq!(got, "two\nthree\nfour\n");
        // The instance exits: what it wrote last is read, then the stream ends.
        append(&path, "five");
        running.store(false, Ordering::SeqCst);
        assert_eq!(rx.recv().await.unwrap(), "five\n");
        assert_eq!(rx.recv().await, None);
        task.await.unwrap();
    }

    /// A plain read (no `follow`) ends at the file's length when it was asked, however fast the
    /// container keeps writing, and never moves on to the file that replaces a rotated one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plain_read_ends_while_the_container_keeps_writing() {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let line = "2026-01-01T00:00:01Z stdout F y\n";
        std::fs::write(&path, line.repeat(1000)).unwrap();
        // Stopped also when an assertion fails, or it would write on into the dropped tempdir.
        struct Stop(std::sync::Arc<AtomicBool>);
        impl Drop for Stop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let _stop = Stop(stop.clone());
        let writer = {
            let (stop, path) = (stop.clone(), path.clone());
            std::thread::spawn(move || {
                let mut rotations = 0;
                while !stop.load(Ordering::SeqCst) {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .unwrap();
                    f.write_all(line.repeat(10_000).as_bytes()).unwrap();
                    if f.metadata().unwrap().len() > 10 << 20 {
                        rotations += 1;
                        std::fs::rename(&path, path.with_extension(format!("log.{rotations}")))
                            .unwrap();
                    }
                }
            })
        };
        for opts in [
            LogOptions::default(),
            LogOptions {
                tail_lines: Some(2),
                ..Default::default()
            },
        ] {
            // A read that lands just after a rotation finds the new file empty and gets
            // nothing (as from the kubelet, which reads only the current file): try again.
            let mut bytes = 0;
            for _ in 0..20 {
                let (tx, mut rx) = mpsc::channel(4);
                let task = tokio::spawn(stream(path.clone(), opts.clone(), tx, || true));
                bytes = 0;
                // A client slower than the container writes (as kubectl over a network is).
                let read = async {
                    while let Some(b) = rx.recv().await {
                        bytes += b.len();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(30), read)
                    .await
                    .unwrap_or_else(|_| {
                        panic!("{opts:?}: still reading after 30 s ({bytes} bytes)")
                    });
                task.await.unwrap();
                if bytes > 0 {
                    break;
                }
            }
            if opts.tail_lines == Some(2) {
                assert_eq!(bytes, 4, "two records of \"y\\n\"");
            }
        }
        drop(_stop);
        writer.join().unwrap();
    }
}
