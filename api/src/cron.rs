//! CronJob schedules as upstream reads them: `cron.ParseStandard` of robfig/cron v3 (five
//! fields minute, hour, day of month, month, day of week; `*`, `?`, lists, ranges, steps,
//! `N/step`, month and weekday names; the descriptors `@yearly`/`@annually`, `@monthly`,
//! `@weekly`, `@daily`/`@midnight`, `@hourly` and `@every <duration>`; a `TZ=`/`CRON_TZ=`
//! prefix), with its error messages, and the time zones of `spec.timeZone`.
//!
//! Start at [`parse_standard`]; [`Schedule::next`] is the next activation after a time.
//!
//! Why croner: it is a maintained crate that parses the same five-field syntax and finds the
//! next match in a jiff time zone, DST gaps and folds included (the `cron` crate wants a
//! seconds field and chrono; `saffron` is unmaintained). It is not a drop-in for robfig's
//! parser, though: it also accepts `L`, `W` and `#`, has other error texts, no `@every`, and
//! decides day-of-month versus day-of-week differently. So the fields are checked here exactly
//! as robfig's `getRange` checks them (same messages), and croner is handed the expanded value
//! lists, with robfig's rule for the two day fields (both must match when either was written
//! as `*` or `?` without a step, either may match otherwise).

use std::time::Duration;

use k8s_openapi::jiff::Zoned;
use k8s_openapi::jiff::tz::TimeZone;

/// A schedule refused, with robfig's message (upstream puts it in a 422 for
/// `spec.schedule`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A five-field (or descriptor) schedule, matched in `zone` when it came from a
    /// `TZ=` prefix (otherwise the caller's zone).
    Cron {
        /// The expanded pattern.
        cron: Box<croner::Cron>,
        /// The zone of a `TZ=`/`CRON_TZ=` prefix.
        zone: Option<TimeZone>,
    },
    /// `@every <duration>`: robfig's `ConstantDelaySchedule` (at least a second, whole
    /// seconds).
    Every(Duration),
}

/// One field's bounds and names (robfig's `bounds`).
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// The values one field selects, and robfig's "star bit" (written as `*` or `?` with no
/// step above 1).
struct Field {
    values: Vec<u32>,
    star: bool,
}

/// Upstream `cron.ParseStandard(spec)`.
pub fn parse_standard(spec: &str) -> Result<Schedule, ScheduleError> {
    let err = |s: String| Err(ScheduleError(s));
    if spec.is_empty() {
        return err("empty spec string".into());
    }
    let mut spec = spec;
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        // robfig slices up to the first space; without one Go would panic, which the API
        // server turns into an error: say the location is bad instead.
        let end = spec.find(' ').unwrap_or(spec.len());
        let name = &spec[eq + 1..end];
        match time_zone(name) {
            Ok(tz) => zone = Some(tz),
            Err(e) => return err(format!("provided bad location {name}: {e}")),
        }
        spec = spec[end..].trim();
    }
    if spec.starts_with('@') {
        return descriptor(spec, zone);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let minute = field(fields[0], &MINUTES)?;
    let hour = field(fields[1], &HOURS)?;
    let dom = field(fields[2], &DOM)?;
    let month = field(fields[3], &MONTHS)?;
    let dow = field(fields[4], &DOW)?;
    build(&[minute, hour, dom, month, dow], zone)
}

/// The expanded fields handed to croner.
fn build(fields: &[Field; 5], zone: Option<TimeZone>) -> Result<Schedule, ScheduleError> {
    let list = |f: &Field| {
        f.values
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let pattern = fields.iter().map(list).collect::<Vec<_>>().join(" ");
    // robfig's dayMatches: AND when either day field has the star bit, OR otherwise.
    let and = fields[2].star || fields[4].star;
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .dom_and_dow(and)
        .build()
        .parse(&pattern)
        .map_err(|e| ScheduleError(e.to_string()))?;
    Ok(Schedule::Cron {
        cron: Box::new(cron),
        zone,
    })
}

/// robfig's `parseDescriptor`.
fn descriptor(spec: &str, zone: Option<TimeZone>) -> Result<Schedule, ScheduleError> {
    let all = |b: &Bounds| Field {
        values: (b.min..=b.max).collect(),
        star: true,
    };
    let one = |v: u32| Field {
        values: vec![v],
        star: false,
    };
    let fields = match spec {
        "@yearly" | "@annually" => [one(0), one(0), one(1), one(1), all(&DOW)],
        "@monthly" => [one(0), one(0), one(1), all(&MONTHS), all(&DOW)],
        "@weekly" => [one(0), one(0), all(&DOM), all(&MONTHS), one(0)],
        "@daily" | "@midnight" => [one(0), one(0), all(&DOM), all(&MONTHS), all(&DOW)],
        "@hourly" => [one(0), all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)],
        _ => {
            if let Some(d) = spec.strip_prefix("@every ") {
                let delay = parse_duration(d)
                    .map_err(|e| ScheduleError(format!("failed to parse duration {spec}: {e}")))?;
                // ConstantDelaySchedule: at least a second, rounded down to whole seconds.
                let nanos = delay.max(1_000_000_000);
                let nanos = nanos - nanos % 1_000_000_000;
                return Ok(Schedule::Every(Duration::from_nanos(
                    u64::try_from(nanos).unwrap_or(u64::MAX),
                )));
            }
            return Err(ScheduleError(format!("unrecognized descriptor: {spec}")));
        }
    };
    build(&fields, zone)
}

/// robfig's `getField`: comma-separated ranges.
fn field(text: &str, b: &Bounds) -> Result<Field, ScheduleError> {
    let mut values = std::collections::BTreeSet::new();
    let mut star = false;
    for expr in text.split(',').filter(|e| !e.is_empty()) {
        let (vals, s) = range(expr, b)?;
        values.extend(vals);
        star |= s;
    }
    Ok(Field {
        values: values.into_iter().collect(),
        star,
    })
}

/// robfig's `getRange`: `*`, `?`, `N`, `N-M`, each with an optional `/step`.
fn range(expr: &str, b: &Bounds) -> Result<(Vec<u32>, bool), ScheduleError> {
    let err = |s: String| Err(ScheduleError(s));
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end, mut star);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (start, end, star) = (b.min, b.max, true);
    } else {
        start = int_or_name(low_and_high[0], b)?;
        end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], b)?,
            _ => return err(format!("too many hyphens: {expr}")),
        };
        star = false;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            // "N/step" means "N-max/step".
            if single {
                end = b.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
        _ => return err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return err(format!("step of range should be a positive number: {expr}"));
    }
    let step = usize::try_from(step).unwrap_or(usize::MAX);
    Ok(((start..=end).step_by(step).collect(), star))
}

/// robfig's `parseIntOrName`.
fn int_or_name(expr: &str, b: &Bounds) -> Result<u32, ScheduleError> {
    let lower = expr.to_ascii_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_parse_int(expr)
}

/// robfig's `mustParseInt` (Go's `strconv.Atoi` messages).
fn must_parse_int(expr: &str) -> Result<u32, ScheduleError> {
    let parsed: Result<i64, String> = {
        let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            Err(format!(
                "strconv.Atoi: parsing {}: invalid syntax",
                gofmt::quote(expr)
            ))
        } else {
            expr.parse::<i64>().map_err(|_| {
                format!(
                    "strconv.Atoi: parsing {}: value out of range",
                    gofmt::quote(expr)
                )
            })
        }
    };
    match parsed {
        Err(e) => Err(ScheduleError(format!(
            "failed to parse int from {expr}: {e}"
        ))),
        Ok(n) if n < 0 => Err(ScheduleError(format!(
            "negative number ({n}) not allowed: {expr}"
        ))),
        // Larger than any field's maximum: the range check reports it.
        Ok(n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
    }
}

/// Go's `time.ParseDuration` in nanoseconds (non-negative results only matter here: a
/// negative delay is raised to a second, as robfig does).
fn parse_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", gofmt::quote(s));
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: f64 = match unit {
            "" => {
                return Err(format!(
                    "time: missing unit in duration {}",
                    gofmt::quote(s)
                ));
            }
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    gofmt::quote(other),
                    gofmt::quote(s)
                ));
            }
        };
        let v: f64 = num.parse().map_err(|_| invalid())?;
        total += v * scale;
    }
    if total > 9.223_372_036_854_776e18 {
        return Err(invalid());
    }
    // Whole nanoseconds, as Go keeps them.
    #[allow(clippy::cast_possible_truncation)]
    let nanos = total as i128;
    Ok(if neg { -nanos } else { nanos })
}

/// Go's `time.LoadLocation(name)` over the tz database (`UTC` and `""` are UTC).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    if name == "Local" {
        return Ok(TimeZone::system());
    }
    // Go refuses names that could escape the zoneinfo directory.
    if name.contains("..") || name.starts_with('/') || name.contains('\\') {
        return Err(format!("time: invalid location name {name}"));
    }
    TimeZone::get(name).map_err(|_| format!("unknown time zone {name}"))
}

impl Schedule {
    /// The first activation strictly after `after` (robfig's `Schedule.Next`), in the
    /// schedule's own zone when it has one, else in `after`'s. `None` when there is none
    /// within croner's search horizon (a pattern such as February 30th).
    pub fn next(&self, after: &Zoned) -> Option<Zoned> {
        match self {
            Schedule::Every(d) => {
                let sub = i64::from(after.subsec_nanosecond());
                let span = k8s_openapi::jiff::SignedDuration::from_nanos(
                    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX) - sub,
                );
                after.checked_add(span).ok()
            }
            Schedule::Cron { cron, zone } => {
                let start = match zone {
                    Some(tz) => after.with_time_zone(tz.clone()),
                    None => after.clone(),
                };
                cron.find_next_occurrence(&start, false).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests;
