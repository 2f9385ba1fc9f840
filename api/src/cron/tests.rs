use k8s_openapi::jiff::Timestamp;

use super::*;

fn utc(s: &str) -> Zoned {
    s.parse::<Timestamp>().unwrap().to_zoned(TimeZone::UTC)
}

fn next(spec: &str, after: &str) -> String {
    parse_standard(spec)
        .unwrap()
        .next(&utc(after))
        .unwrap()
        .timestamp()
        .to_string()
}

#[test]
fn robfig_messages_for_bad_schedules() {
    let msg = |s: &str| parse_standard(s).unwrap_err().0;
    assert_eq!(msg(""), "empty spec string");
    assert_eq!(
        msg("* * * *"),
        "expected exactly 5 fields, found 4: [* * * *]"
    );
    assert_eq!(
        msg("61 * * * *"),
        "end of range (61) above maximum (59): 61"
    );
    assert_eq!(
        msg("* * 0 * *"),
        "beginning of range (0) below minimum (1): 0"
    );
    assert_eq!(
        msg("5-2 * * * *"),
        "beginning of range (5) beyond end of range (2): 5-2"
    );
    assert_eq!(
        msg("*/0 * * * *"),
        "step of range should be a positive number: */0"
    );
    assert_eq!(msg("1-2-3 * * * *"), "too many hyphens: 1-2-3");
    assert_eq!(msg("1/2/3 * * * *"), "too many slashes: 1/2/3");
    assert_eq!(
        msg("foo * * * *"),
        "failed to parse int from foo: strconv.Atoi: parsing \"foo\": invalid syntax"
    );
    assert_eq!(msg("* * * * 7"), "end of range (7) above maximum (6): 7");
    assert_eq!(msg("@fortnightly"), "unrecognized descriptor: @fortnightly");
    // croner's extensions are not robfig's.
    assert!(parse_standard("* * L * *").is_err());
    assert!(parse_standard("* * * * 1#2").is_err());
    let tz = msg("TZ=Mars/Base * * * * *");
    assert!(tz.starts_with("provided bad location Mars/Base:"), "{tz}");
}

#[test]
fn next_activations_follow_robfig() {
    assert_eq!(
        next("* * * * *", "2026-01-01T00:00:30Z"),
        "2026-01-01T00:01:00Z"
    );
    assert_eq!(
        next("*/15 * * * *", "2026-01-01T00:16:00Z"),
        "2026-01-01T00:30:00Z"
    );
    assert_eq!(
        next("5/20 * * * *", "2026-01-01T00:26:00Z"),
        "2026-01-01T00:45:00Z"
    );
    assert_eq!(
        next("@hourly", "2026-01-01T00:00:00Z"),
        "2026-01-01T01:00:00Z"
    );
    assert_eq!(
        next("@daily", "2026-01-01T00:00:00Z"),
        "2026-01-02T00:00:00Z"
    );
    assert_eq!(
        next("0 0 1 jan *", "2026-03-01T00:00:00Z"),
        "2027-01-01T00:00:00Z"
    );
    assert_eq!(
        next("0 9 * * MON-FRI", "2026-01-02T10:00:00Z"),
        "2026-01-05T09:00:00Z"
    );
    // Both day fields restricted: either may match (2026-01-04 is a Sunday, before the 13th).
    assert_eq!(
        next("0 0 13 * 0", "2026-01-02T00:00:00Z"),
        "2026-01-04T00:00:00Z"
    );
    assert_eq!(
        next("0 0 13 * 5", "2026-01-14T00:00:00Z"),
        "2026-01-16T00:00:00Z"
    );
    // One of them `*` (or `?`): both must match, so Fridays only.
    assert_eq!(
        next("0 0 ? * 5", "2026-01-14T00:00:00Z"),
        "2026-01-16T00:00:00Z"
    );
    assert_eq!(
        next("0 0 * 2 5", "2026-01-14T00:00:00Z"),
        "2026-02-06T00:00:00Z"
    );
    // A step above 1 clears robfig's star bit: odd days OR Mondays.
    assert_eq!(
        next("0 0 */2 * 1", "2026-01-02T01:00:00Z"),
        "2026-01-03T00:00:00Z"
    );
    assert_eq!(
        next("@every 90s", "2026-01-01T00:00:00.5Z"),
        "2026-01-01T00:01:30Z"
    );
}

#[test]
fn schedules_in_a_time_zone() {
    let s = parse_standard("0 9 * * *").unwrap();
    let tz = time_zone("America/New_York").unwrap();
    let after = utc("2026-07-01T00:00:00Z").with_time_zone(tz);
    // 09:00 EDT is 13:00 UTC.
    assert_eq!(
        s.next(&after).unwrap().timestamp().to_string(),
        "2026-07-01T13:00:00Z"
    );
    assert!(time_zone("Not/AZone").is_err());
}
