//! Go's formatting, so paddock's messages read byte for byte as the Go components' do (the
//! kubelet's probe outputs and events, the API server's error messages):
//!
//! - [`quote`] and [`quote_bytes`]: `strconv.Quote`, what `%q` prints for a string;
//! - [`duration`] and [`duration_nanos`], `time.Duration.String()`;
//! - `errno_text` (feature `errno`), the text Go prints for a syscall error number.
//!
//! A leaf crate so that `api`, `probe` and `agent` share one copy of each rule.

use std::fmt::Write as _;
use std::time::Duration;

use unicode_general_category::{GeneralCategory, get_general_category};

/// Go's `strconv.Quote` (what `%q` prints for a string): double quotes around `s`, with `"`
/// and `\` backslashed, `\a \b \f \n \r \t \v` for those controls, `\xNN` for the other ASCII
/// controls, `\uNNNN` / `\UNNNNNNNN` for every other rune that is not printable in Go's sense
/// ([`is_print`]), and every printable rune as itself.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

/// [`quote`] for bytes that need not be UTF-8, as Go's strings need not be: each byte that does
/// not start a valid UTF-8 sequence is written `\xNN`, the rest as [`quote`] writes them.
pub fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        // Go decodes one byte at a time after an invalid sequence, so every byte of it is
        // escaped on its own.
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// Go's `appendEscapedRune` for a double-quoted string.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        c if is_print(c) => out.push(c),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Go's `strconv.IsPrint` (= `unicode.IsPrint`): letters, marks, numbers, punctuation, symbols
/// and the ASCII space; not other spaces, controls, format characters, private-use or
/// unassigned code points. Categories are Unicode 16.0's, so a code point assigned in a
/// Unicode version newer than the Go toolchain's tables prints here and is escaped by Go.
pub fn is_print(c: char) -> bool {
    use GeneralCategory::*;
    if c == ' ' {
        return true;
    }
    matches!(
        get_general_category(c),
        UppercaseLetter
            | LowercaseLetter
            | TitlecaseLetter
            | ModifierLetter
            | OtherLetter
            | NonspacingMark
            | SpacingMark
            | EnclosingMark
            | DecimalNumber
            | LetterNumber
            | OtherNumber
            | ConnectorPunctuation
            | DashPunctuation
            | OpenPunctuation
            | ClosePunctuation
            | InitialPunctuation
            | FinalPunctuation
            | OtherPunctuation
            | MathSymbol
            | CurrencySymbol
            | ModifierSymbol
            | OtherSymbol
    )
}

/// Go's `time.Duration.String()` for a [`Duration`]: `1s`, `1.5s`, `1m30s`, `200ms`, `1.5µs`,
/// `0s`. A duration beyond Go's (`i64` nanoseconds, about 292 years) prints as the largest.
pub fn duration(d: Duration) -> String {
    duration_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Go's `time.Duration.String()` for a Go `Duration` (signed nanoseconds): `1h2m3.5s`,
/// `1.5ms`, `-1m30s`, `0s`. Below one second the unit is ns, µs or ms; from one second on,
/// hours and minutes are printed once non-zero, seconds always, fractions without trailing
/// zeros.
pub fn duration_nanos(nanos: i64) -> String {
    let mut u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0 => return "0s".to_string(),
            1..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (frac, whole) = fraction(u, prec);
        let _ = write!(out, "{whole}{frac}{unit}");
    } else {
        let (frac, whole) = fraction(u, 9);
        u = whole;
        let secs = format!("{}{frac}s", u % 60);
        u /= 60;
        if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                let _ = write!(out, "{u}h");
            }
            let _ = write!(out, "{mins}m");
        }
        out.push_str(&secs);
    }
    if nanos < 0 {
        out.insert(0, '-');
    }
    out
}

/// `(".fraction" without trailing zeros or "", v / 10^prec)`, as Go's `fmtFrac`.
fn fraction(v: u64, prec: u32) -> (String, u64) {
    let scale = 10u64.pow(prec);
    let (whole, frac) = (v / scale, v % scale);
    if frac == 0 {
        return (String::new(), whole);
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (format!(".{}", digits.trim_end_matches('0')), whole)
}

/// The text Go prints for a syscall error number (`connection refused`, `no route to host`):
/// the C library's description with its first letter lowered, as Go's own table reads.
#[cfg(feature = "errno")]
pub fn errno_text(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => err.to_string(),
            }
        }
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_plain_text_and_backslashes_quotes() {
        assert_eq!(quote("/bin/sh -c sleep 10"), r#""/bin/sh -c sleep 10""#);
        assert_eq!(quote("echo \"hi\"\n"), r#""echo \"hi\"\n""#);
        assert_eq!(quote(r"C:\x"), r#""C:\\x""#);
        assert_eq!(quote(""), r#""""#);
    }

    /// The escapes the two former copies disagreed on: the API server's wrote `\x07` for
    /// `\a` and the like; Go writes the short forms.
    #[test]
    fn quotes_the_short_control_escapes() {
        assert_eq!(quote("\u{7}\u{8}\u{c}\n\r\t\u{b}"), r#""\a\b\f\n\r\t\v""#);
    }

    #[test]
    fn quotes_other_ascii_controls_as_hex() {
        assert_eq!(quote("a\u{1}b"), r#""a\x01b""#);
        assert_eq!(quote("\u{0}\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
    }

    #[test]
    fn quotes_non_printable_runes_as_unicode_escapes() {
        // C1 control, no-break space (Zs), soft hyphen and zero-width space (Cf), BOM,
        // line separator (Zl), private use, unassigned, a plane-1 format character.
        assert_eq!(quote("\u{85}"), r#""\u0085""#);
        assert_eq!(quote("a\u{a0}b"), r#""a\u00a0b""#);
        assert_eq!(quote("\u{ad}\u{200b}\u{feff}"), r#""\u00ad\u200b\ufeff""#);
        assert_eq!(quote("\u{2028}"), r#""\u2028""#);
        assert_eq!(quote("\u{e000}"), r#""\ue000""#);
        assert_eq!(quote("\u{378}"), r#""\u0378""#);
        assert_eq!(quote("\u{e0001}"), r#""\U000e0001""#);
        assert_eq!(quote("\u{10fffd}"), r#""\U0010fffd""#);
    }

    #[test]
    fn keeps_printable_non_ascii_runes() {
        assert_eq!(quote("é ü ß"), r#""é ü ß""#);
        assert_eq!(quote("日本語"), r#""日本語""#);
        assert_eq!(quote("😀"), r#""😀""#);
        // A combining mark (Mn) is printable.
        assert_eq!(quote("e\u{301}"), "\"e\u{301}\"");
    }

    #[test]
    fn quotes_invalid_utf8_bytes_one_by_one() {
        assert_eq!(quote_bytes(b"ok"), r#""ok""#);
        assert_eq!(quote_bytes(b"a\xffb"), r#""a\xffb""#);
        // A truncated three-byte sequence: each byte escaped, as Go decodes byte by byte.
        assert_eq!(quote_bytes(b"\xe6\x97x"), r#""\xe6\x97x""#);
        assert_eq!(quote_bytes("é\n".as_bytes()), r#""é\n""#);
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(duration(Duration::from_secs(1)), "1s");
        assert_eq!(duration(Duration::from_secs(90)), "1m30s");
        // The kubelet's back-off messages: "back-off 5m0s restarting failed container".
        assert_eq!(duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_millis(200)), "200ms");
        assert_eq!(duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(duration(Duration::ZERO), "0s");
        assert_eq!(
            duration(Duration::MAX),
            duration_nanos(i64::MAX),
            "saturates at Go's largest duration"
        );
    }

    #[test]
    fn signed_durations_like_go() {
        for (nanos, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-90_000_000_000, "-1m30s"),
            (-1_500, "-1.5µs"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(duration_nanos(nanos), want, "{nanos}");
        }
    }

    #[cfg(feature = "errno")]
    #[test]
    fn errno_texts_like_go() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(errno_text(&e), "connection refused");
        let e = std::io::Error::from_raw_os_error(113);
        assert_eq!(errno_text(&e), "no route to host");
    }
}
