//! A five-field cron expression (`minute hour day-of-month month
//! day-of-week`), evaluated in UTC.
//!
//! Written here rather than pulled from crates.io because intake needs only
//! "next fire time after t" in UTC, deterministic and without a time-zone
//! database; the semantics follow Vixie cron, which operators know:
//! - `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n`, `a-b/n`, `a/n`;
//! - month names `jan`…`dec` and weekday names `sun`…`sat`;
//!   weekday 0 and 7 are both Sunday;
//! - when both day-of-month and day-of-week are restricted (neither starts
//!   with `*`), a day matches if *either* matches;
//! - `@hourly`, `@daily`/`@midnight`, `@weekly`, `@monthly`,
//!   `@yearly`/`@annually`.
//!
//! Time zones are out of scope on purpose: a UTC schedule fires exactly
//! once per slot, with no DST gaps or repeats to reason about.

use std::fmt;

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not five fields.
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), found {0}")]
    FieldCount(usize),
    /// A field is malformed.
    #[error("{field} field {text:?}: {problem}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// The field as written.
        text: String,
        /// What is wrong.
        problem: String,
    },
    /// An unknown `@` macro.
    #[error(
        "unknown macro {0:?} (known: @hourly @daily @midnight @weekly @monthly @yearly @annually)"
    )]
    Macro(String),
    /// Valid syntax, but no date ever matches (e.g. `0 0 31 2 *`).
    #[error("never fires: no month in the expression has the requested day of month")]
    NeverFires,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    bits: u64,
    /// Written starting with `*` (matters for the day-of-month /
    /// day-of-week rule).
    star: bool,
}

impl Field {
    fn has(self, v: u32) -> bool {
        self.bits & (1 << v) != 0
    }
}

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    text: String,
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn parse_field(
    field: &'static str,
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    names_base: u32,
) -> Result<Field, CronError> {
    let err = |problem: String| CronError::Field {
        field,
        text: text.to_owned(),
        problem,
    };
    let value = |s: &str| -> Result<u32, CronError> {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i as u32 + names_base);
        }
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(format!(
                "{s:?} is not a number{}",
                if names.is_empty() { "" } else { " or name" }
            )));
        }
        let v: u32 = s
            .parse()
            .map_err(|_| err(format!("{s:?} is not a number")))?;
        if v < min || v > max {
            return Err(err(format!("{v} is out of range {min}-{max}")));
        }
        Ok(v)
    };
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1 && n <= max)
                    .ok_or_else(|| err(format!("step {s:?} must be a number from 1 to {max}")))?;
                (r, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a)?, value(b)?);
            if a > b {
                return Err(err(format!("range {a}-{b} is backwards")));
            }
            (a, b)
        } else {
            let a = value(range)?;
            // `a/n` means from a to the maximum, every n.
            (a, if step.is_some() { max } else { a })
        };
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok(Field {
        bits,
        star: text.starts_with('*'),
    })
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl CronExpr {
    /// Parses an expression; see the module docs for the syntax.
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let trimmed = text.trim();
        let expanded = match trimmed {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            m if m.starts_with('@') => return Err(CronError::Macro(m.to_owned())),
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let [mi, h, dom, mon, dow] = parts.as_slice() else {
            return Err(CronError::FieldCount(parts.len()));
        };
        let mut dow = parse_field("day-of-week", dow, 0, 7, &DAYS, 0)?;
        if dow.has(7) {
            dow.bits = (dow.bits | 1) & !(1 << 7);
        }
        let expr = Self {
            text: trimmed.to_owned(),
            minute: parse_field("minute", mi, 0, 59, &[], 0)?,
            hour: parse_field("hour", h, 0, 23, &[], 0)?,
            dom: parse_field("day-of-month", dom, 1, 31, &[], 0)?,
            month: parse_field("month", mon, 1, 12, &MONTHS, 1)?,
            dow,
        };
        // Only an unrestricted weekday can leave a day-of-month unmatched
        // in every selected month; check it up front so `next_after` never
        // has to search in vain.
        if expr.dow.star
            && !(1..=12)
                .any(|m| expr.month.has(m) && (1..=days_in_month(2000, m)).any(|d| expr.dom.has(d)))
        {
            return Err(CronError::NeverFires);
        }
        Ok(expr)
    }

    fn day_matches(&self, d: u32, weekday: u32) -> bool {
        let dom = self.dom.has(d);
        let dow = self.dow.has(weekday);
        if self.dom.star || self.dow.star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first matching minute strictly after `after_unix` (seconds),
    /// as Unix seconds. `None` only past the year 9999.
    pub fn next_after(&self, after_unix: u64) -> Option<u64> {
        let mut t = (after_unix / 60 + 1) * 60;
        // Eight years covers any Feb-29-only expression across a
        // non-leap century year.
        let limit = after_unix
            .saturating_add(9 * 366 * 86_400)
            .min(253_402_300_799);
        while t <= limit {
            let days = (t / 86_400) as i64;
            let secs = t % 86_400;
            let (y, m, d) = civil_from_days(days);
            if !self.month.has(m) {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                t = days_from_civil(ny, nm, 1) as u64 * 86_400;
                continue;
            }
            let weekday = (days + 4).rem_euclid(7) as u32;
            if !self.day_matches(d, weekday) {
                t = (days as u64 + 1) * 86_400;
                continue;
            }
            let hour = (secs / 3600) as u32;
            if !self.hour.has(hour) {
                t = days as u64 * 86_400 + u64::from(hour + 1) * 3600;
                continue;
            }
            let minute = ((secs % 3600) / 60) as u32;
            if !self.minute.has(minute) {
                t += 60;
                continue;
            }
            return Some(t);
        }
        None
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_conversions_match_known_dates() {
        // Day numbers computed independently with Python's datetime.
        let cases = [
            ((1970, 1, 1), 0),
            ((2000, 2, 29), 11_016),
            ((2026, 11, 23), 20_780),
            ((2100, 3, 1), 47_541),
            ((1969, 12, 31), -1),
        ];
        for ((y, m, d), days) in cases {
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
        }
        for z in (-1_000_000..1_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    /// Expected values were computed with an independent brute-force
    /// minute-by-minute evaluator in Python (datetime, UTC).
    #[test]
    fn next_after_table() {
        // 2026-11-23T00:53:10Z (a Monday).
        let t0 = 1_795_395_190;
        let cases: [(&str, u64, u64); 16] = [
            ("* * * * *", t0, 1_795_395_240),
            ("*/15 * * * *", t0, 1_795_395_600),
            ("0 * * * *", t0, 1_795_395_600),
            ("30 2 * * *", t0, 1_795_401_000),
            ("0 0 * * 0", t0, 1_795_910_400),
            ("0 0 * * 7", t0, 1_795_910_400),
            ("0 0 * * sun", t0, 1_795_910_400),
            ("0 0 1 * *", t0, 1_796_083_200),
            ("0 0 29 2 *", t0, 1_835_395_200),
            ("0 12 13 * fri", t0, 1_795_780_800),
            ("0 9-17/4 * * mon-fri", t0, 1_795_424_400),
            ("5 4 * jan,jul *", t0, 1_798_776_300),
            ("0 0 31 * *", t0, 1_798_675_200),
            ("59 23 31 12 *", t0, 1_798_761_540),
            ("@weekly", t0, 1_795_910_400),
            ("* * * * *", 1_795_395_240, 1_795_395_300),
        ];
        for (expr, after, want) in cases {
            let e = CronExpr::parse(expr).unwrap_or_else(|err| panic!("{expr}: {err}"));
            assert_eq!(e.next_after(after), Some(want), "{expr} after {after}");
        }
    }

    /// Minute-by-minute reference: does minute `t` match?
    fn matches_minute(e: &CronExpr, t: u64) -> bool {
        let days = (t / 86_400) as i64;
        let (_, m, d) = civil_from_days(days);
        let secs = t % 86_400;
        e.month.has(m)
            && e.day_matches(d, (days + 4).rem_euclid(7) as u32)
            && e.hour.has((secs / 3600) as u32)
            && e.minute.has(((secs % 3600) / 60) as u32)
    }

    /// Generated expressions: the skipping search in `next_after` must
    /// agree with stepping one minute at a time (no minute skipped over).
    #[test]
    fn next_after_agrees_with_minute_stepping() {
        let pools: [&[&str]; 5] = [
            &["*", "0", "*/7", "5-10", "59", "1,31"],
            &["*", "0", "23", "*/5", "9-17"],
            &["*", "1", "15", "28-31", "*/10"],
            &["*", "1-12/2", "2", "dec", "jun-aug"],
            &["*", "0", "1-5", "sat,sun", "3"],
        ];
        let mut x: u64 = 0x1234_5678;
        let mut pick = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut checked = 0;
        for _ in 0..60 {
            let fields: Vec<&str> = pools.iter().map(|p| p[pick(p.len())]).collect();
            let text = fields.join(" ");
            let Ok(e) = CronExpr::parse(&text) else {
                continue;
            };
            let after = 1_795_395_190 + pick(400) as u64 * 86_400 + pick(86_400) as u64;
            let next = e.next_after(after).expect("fires within 9 years");
            assert!(next > after && next % 60 == 0, "{text}");
            assert!(matches_minute(&e, next), "{text}: {next} does not match");
            // Only walk the gap when it is short enough to stay cheap.
            if next - after <= 40 * 86_400 {
                let mut t = (after / 60 + 1) * 60;
                while t < next {
                    assert!(
                        !matches_minute(&e, t),
                        "{text}: skipped matching minute {t}"
                    );
                    t += 60;
                }
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} expressions walked");
    }

    #[test]
    fn parse_errors_table() {
        let cases = [
            (
                "* * * *",
                "expected 5 fields (minute hour day-of-month month day-of-week), found 4",
            ),
            ("60 * * * *", "minute field \"60\": 60 is out of range 0-59"),
            ("* 24 * * *", "hour field \"24\": 24 is out of range 0-23"),
            (
                "* * 0 * *",
                "day-of-month field \"0\": 0 is out of range 1-31",
            ),
            ("* * * 13 *", "month field \"13\": 13 is out of range 1-12"),
            (
                "* * * * 8",
                "day-of-week field \"8\": 8 is out of range 0-7",
            ),
            (
                "*/0 * * * *",
                "minute field \"*/0\": step \"0\" must be a number from 1 to 59",
            ),
            (
                "5-1 * * * *",
                "minute field \"5-1\": range 5-1 is backwards",
            ),
            ("x * * * *", "minute field \"x\": \"x\" is not a number"),
            (
                "* * * foo *",
                "month field \"foo\": \"foo\" is not a number or name",
            ),
            (
                "1,,2 * * * *",
                "minute field \"1,,2\": \"\" is not a number",
            ),
            (
                "@often",
                "unknown macro \"@often\" (known: @hourly @daily @midnight @weekly @monthly @yearly @annually)",
            ),
            (
                "0 0 30 2 *",
                "never fires: no month in the expression has the requested day of month",
            ),
            (
                "0 0 31 4,6 *",
                "never fires: no month in the expression has the requested day of month",
            ),
        ];
        for (expr, want) in cases {
            assert_eq!(
                CronExpr::parse(expr).unwrap_err().to_string(),
                want,
                "{expr}"
            );
        }
        // Restricted weekday: day 30 of February OR any Monday, so it fires.
        assert!(CronExpr::parse("0 0 30 2 mon").is_ok());
    }
}
