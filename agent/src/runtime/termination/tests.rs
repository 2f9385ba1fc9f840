use std::time::SystemTime;

use super::*;

fn exited(code: i32, reason: &str, message: Option<&str>) -> Exited {
    Exited {
        exit_code: code,
        signal: None,
        finished_at: SystemTime::UNIX_EPOCH,
        reason: reason.into(),
        message: message.map(str::to_string),
    }
}

/// A CRI log file with `lines` (stream, tag, text).
fn cri_log(dir: &Path, lines: &[(&str, &str, &str)]) -> PathBuf {
    let path = dir.join("0.log");
    let mut text = String::new();
    for (stream, tag, line) in lines {
        text.push_str(&format!(
            "2026-01-01T00:00:00.000000000Z {stream} {tag} {line}\n"
        ));
    }
    std::fs::write(&path, text).expect("log");
    path
}

#[test]
fn the_file_is_read_from_its_end_at_most_4_kib() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("t");
    let mut data = vec![b'a'; 5000];
    data.extend_from_slice(b"END");
    std::fs::write(&f, &data).expect("write");
    let got = read_at_most(&f, MAX_CONTAINER_TERMINATION_MESSAGE_LENGTH).expect("read");
    assert_eq!(got.len(), 4096);
    assert!(got.ends_with(b"aEND"));
    let (msg, logs) = file_message(Some(&f), true);
    assert_eq!(msg.len(), 4096);
    assert!(!logs, "a non-empty file never falls back");
    std::fs::write(&f, b"short").expect("write");
    assert_eq!(file_message(Some(&f), false), ("short".to_string(), false));
}

#[test]
fn an_empty_missing_or_unmounted_file_falls_back_only_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("t");
    std::fs::write(&f, b"").expect("write");
    assert_eq!(file_message(Some(&f), true), (String::new(), true));
    assert_eq!(file_message(Some(&f), false), (String::new(), false));
    let missing = dir.path().join("missing");
    assert_eq!(file_message(Some(&missing), true), (String::new(), true));
    assert_eq!(file_message(None, true), (String::new(), true));
    assert_eq!(file_message(None, false), (String::new(), false));
    // Any other error is the message itself, worded as upstream (Go's *PathError).
    let bad = f.join("x");
    let want = format!(
        "Error on reading termination log {p}: open {p}: not a directory",
        p = bad.display()
    );
    assert_eq!(file_message(Some(&bad), true), (want, false));
}

#[test]
fn log_fallback_is_the_text_of_the_last_80_lines_cut_to_2_kib() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    let mut records: Vec<(&str, &str, &str)> =
        lines.iter().map(|l| ("stdout", "F", l.as_str())).collect();
    records.push(("stderr", "P", "half "));
    records.push(("stderr", "F", "done"));
    let log = cri_log(dir.path(), &records);
    let text = log_tail_message(&log);
    // 80 records: line 22..99, then the partial and the full stderr record.
    let mut want: String = (22..100).map(|i| format!("line {i}\n")).collect();
    want.push_str("half done\n");
    assert_eq!(text, want);

    let long = "x".repeat(100);
    let many: Vec<(&str, &str, &str)> = (0..30).map(|_| ("stdout", "F", long.as_str())).collect();
    let log = cri_log(dir.path(), &many);
    let text = log_tail_message(&log);
    assert_eq!(text.len(), MAX_CONTAINER_TERMINATION_MESSAGE_LOG_LENGTH);
    assert!(text.ends_with(&format!("{long}\n")));

    let missing = dir.path().join("gone.log");
    assert_eq!(
        log_tail_message(&missing),
        format!(
            "Error on reading termination message from logs: failed to try resolving symlinks in path \"{p}\": lstat {p}: no such file or directory",
            p = missing.display()
        )
    );
}

#[test]
fn the_message_follows_the_kubelets_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = cri_log(dir.path(), &[("stdout", "F", "from the log")]);
    let file = dir.path().join("term");
    let set = |content: &str| std::fs::write(&file, content).expect("write");
    let fallback = Termination::new(
        Some(file.clone()),
        TerminationMessagePolicy::FallbackToLogsOnError,
    );
    let file_only = Termination::new(Some(file.clone()), TerminationMessagePolicy::File);
    let run = |t: &Termination, e: Exited| {
        let mut e = e;
        t.complete(&mut e, &log);
        e.message
    };

    // The file wins, whatever the policy and the exit.
    set("DONE");
    assert_eq!(
        run(&file_only, exited(0, "Completed", None)).as_deref(),
        Some("DONE")
    );
    assert_eq!(
        run(&fallback, exited(1, "Error", None)).as_deref(),
        Some("DONE")
    );
    // Empty file: the log only for a failed container with FallbackToLogsOnError.
    set("");
    assert_eq!(run(&fallback, exited(0, "Completed", None)), None);
    assert_eq!(run(&file_only, exited(1, "Error", None)), None);
    assert_eq!(
        run(&fallback, exited(1, "Error", None)).as_deref(),
        Some("from the log\n")
    );
    // A container that could not run has no logs to fall back to.
    assert_eq!(
        run(&fallback, exited(128, "ContainerCannotRun", None)),
        None
    );
    // The runtime's own message comes first.
    assert_eq!(
        run(
            &fallback,
            exited(137, "ContainerStatusUnknown", Some("status lost"))
        )
        .as_deref(),
        Some("status lost: from the log\n")
    );
    set("written");
    assert_eq!(
        run(&file_only, exited(2, "Error", Some(""))).as_deref(),
        Some("written")
    );
    // No file mounted (host mode): only the fallback.
    let unmounted = Termination::new(None, TerminationMessagePolicy::FallbackToLogsOnError);
    assert_eq!(
        run(&unmounted, exited(3, "Error", None)).as_deref(),
        Some("from the log\n")
    );
    fallback.remove();
    assert!(!file.exists());
}

#[test]
fn bytes_become_text_as_gos_json_encoder_shows_them() {
    assert_eq!(go_string(b"plain \xc3\xa9"), "plain é");
    // One replacement per invalid byte, as Go's `DecodeRune` steps one byte at a time.
    assert_eq!(go_string(b"a\xe2\x82b"), "a\u{FFFD}\u{FFFD}b");
    assert_eq!(go_string(b"\x80\x80"), "\u{FFFD}\u{FFFD}");
    assert_eq!(go_string(b"end\xff"), "end\u{FFFD}");
}

#[test]
fn the_log_tail_counts_the_final_newline_as_ending_the_last_line() {
    use crate::runtime::logs::tail_offset;
    assert_eq!(tail_offset(b"a\nb\nc\n", 2), 2);
    assert_eq!(tail_offset(b"a\nb\nc", 2), 2);
    assert_eq!(tail_offset(b"a\nb\n", 5), 0);
    assert_eq!(tail_offset(b"", 80), 0);
}

#[test]
fn the_status_keeps_12_kib_per_pod_split_between_its_containers() {
    let long = "a".repeat(5000);
    assert_eq!(normalize_message(&long, 1), long, "4 KiB fit 12 KiB");
    assert_eq!(normalize_message(&long, 4).len(), 3072);
    assert_eq!(normalize_message(&long, 0), long);
    assert_eq!(normalize_message("short", 48), "short");
    // 256 bytes each for 48 containers; a character cut in two is Go's replacement per byte.
    let text = format!("{}é", "b".repeat(255));
    assert_eq!(
        normalize_message(&text, 48),
        format!("{}\u{FFFD}", "b".repeat(255))
    );
}
