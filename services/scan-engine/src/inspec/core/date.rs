//! `Date`: today's date (UTC), parsing the usual formats, day arithmetic.

use jiff::ToSpan;
use jiff::civil::Date;

use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::{Value, ruby_cmp};

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_of(word: &str) -> Option<i8> {
    let w = word.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| w.starts_with(m))
        .and_then(|i| i8::try_from(i + 1).ok())
}

/// Parses the date formats profiles meet: ISO `2024-01-31` (a time may
/// follow), `2024/01/31`, `Jan 31 2024`, `31 Jan 2024`, `Jan 31, 2024`.
pub fn parse(text: &str) -> Option<Date> {
    let t = text.trim();
    let iso: String = t.chars().take(10).collect();
    for sep in ['-', '/'] {
        let p: Vec<&str> = iso.split(sep).collect();
        if p.len() == 3
            && p[0].len() == 4
            && let (Ok(y), Ok(m), Ok(d)) =
                (p[0].parse::<i16>(), p[1].parse::<i8>(), p[2].parse::<i8>())
        {
            return Date::new(y, m, d).ok();
        }
    }
    let words: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut year = None;
    let mut month = None;
    let mut day = None;
    for w in words {
        if let Some(m) = month_of(w).filter(|_| w.chars().all(char::is_alphabetic)) {
            month = month.or(Some(m));
        } else if let Ok(n) = w.parse::<i16>() {
            if n > 31 {
                year = year.or(Some(n));
            } else if day.is_none() {
                day = i8::try_from(n).ok();
            }
        }
    }
    Date::new(year?, month?, day?).ok()
}

/// `Date.today`, `Date.parse`, `Date.new`.
///
/// # Errors
/// ArgumentError for invalid dates.
pub fn class_call(it: &Interp<'_>, name: &str, args: &Args) -> R<Option<Value>> {
    Ok(Some(match name {
        "today" | "now" => Value::Date(
            jiff::Timestamp::now()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date(),
        ),
        "parse" | "iso8601" | "strptime" => {
            match parse(&args.get(0).map(Value::to_s).unwrap_or_default()) {
                Some(d) => Value::Date(d),
                None => return it.raise("ArgumentError", "invalid date"),
            }
        }
        "new" | "civil" => {
            let n = |i: usize, d: i64| match args.get(i) {
                Some(Value::Int(v)) => *v,
                _ => d,
            };
            match (
                i16::try_from(n(0, -4712)),
                i8::try_from(n(1, 1)),
                i8::try_from(n(2, 1)),
            ) {
                (Ok(y), Ok(m), Ok(d)) => match Date::new(y, m, d) {
                    Ok(date) => Value::Date(date),
                    Err(_) => return it.raise("ArgumentError", "invalid date"),
                },
                _ => return it.raise("ArgumentError", "invalid date"),
            }
        }
        "valid_date?" => Value::Bool(matches!(
            (args.get(0), args.get(1), args.get(2)),
            (Some(Value::Int(y)), Some(Value::Int(m)), Some(Value::Int(d)))
                if i16::try_from(*y).ok().zip(i8::try_from(*m).ok()).zip(i8::try_from(*d).ok())
                    .is_some_and(|((y, m), d)| Date::new(y, m, d).is_ok())
        )),
        _ => return Ok(None),
    }))
}

fn add_days(it: &Interp<'_>, d: Date, n: i64) -> R<Value> {
    match d.checked_add(n.days()) {
        Ok(x) => Ok(Value::Date(x)),
        Err(_) => it.raise("RangeError", "date out of range"),
    }
}

/// Date methods; `None` when `name` is not one.
///
/// # Errors
/// Out-of-range arithmetic.
pub fn call(it: &Interp<'_>, recv: &Value, name: &str, args: &Args) -> R<Option<Value>> {
    let Value::Date(d) = recv else {
        return Ok(None);
    };
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    Ok(Some(match (name, &a0) {
        ("year", _) => Value::Int(i64::from(d.year())),
        ("month" | "mon", _) => Value::Int(i64::from(d.month())),
        ("day" | "mday", _) => Value::Int(i64::from(d.day())),
        ("wday", _) => Value::Int(i64::from(d.weekday().to_sunday_zero_offset())),
        ("yday", _) => Value::Int(i64::from(d.day_of_year())),
        ("leap?", _) => Value::Bool(d.in_leap_year()),
        ("+", Value::Int(n)) => add_days(it, *d, *n)?,
        ("-", Value::Int(n)) => add_days(it, *d, -n)?,
        ("-", Value::Date(o)) => Value::Int(i64::from((*d - *o).get_days())),
        ("next_day" | "succ", _) => add_days(it, *d, 1)?,
        ("prev_day", _) => add_days(it, *d, -1)?,
        (">>" | "<<", Value::Int(n)) => {
            let months = if name == ">>" { *n } else { -n };
            match d.checked_add(months.months()) {
                Ok(x) => Value::Date(x),
                Err(_) => return it.raise("RangeError", "date out of range"),
            }
        }
        ("to_s" | "iso8601", _) => Value::str(d.to_string()),
        ("to_date", _) => recv.clone(),
        ("jd", _) => Value::Int(i64::from((*d - Date::constant(-4713, 11, 24)).get_days())),
        ("strftime", Value::Str(f)) => Value::str(
            f.replace("%Y", &format!("{:04}", d.year()))
                .replace("%m", &format!("{:02}", d.month()))
                .replace("%d", &format!("{:02}", d.day())),
        ),
        ("<=>", _) => ruby_cmp(recv, &a0).map_or(Value::Nil, |o| Value::Int(o as i64)),
        ("<" | ">" | "<=" | ">=", _) => match ruby_cmp(recv, &a0) {
            Some(o) => Value::Bool(super::ordering_holds(name, o)),
            None => {
                return it.raise(
                    "ArgumentError",
                    format!("comparison of Date with {} failed", a0.inspect()),
                );
            }
        },
        _ => return Ok(None),
    }))
}
