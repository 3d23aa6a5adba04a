//! `format` / `sprintf` / `String#%`: the directives profiles use.

use crate::inspec::interp::{Interp, R};
use crate::inspec::value::Value;

/// Formats `fmt` with `args`.
///
/// # Errors
/// ArgumentError when there are too few arguments; unsupported directives.
pub fn format(it: &Interp<'_>, fmt: &str, args: &[Value]) -> R<String> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek() {
            if "-+0 #".contains(f) {
                flags.push(f);
                chars.next();
            } else {
                break;
            }
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = p.parse::<usize>().ok();
        }
        let Some(kind) = chars.next() else {
            out.push('%');
            break;
        };
        if kind == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = next.next() else {
            return it.raise("ArgumentError", "too few arguments");
        };
        let body = directive(it, kind, v, precision)?;
        let w: usize = width.parse().unwrap_or(0);
        it.alloc(w)?;
        let pad = w.saturating_sub(body.chars().count());
        if flags.contains('-') {
            out.push_str(&body);
            out.push_str(&" ".repeat(pad));
        } else if flags.contains('0') && "dixof".contains(kind) {
            let (sign, digits) = body
                .strip_prefix('-')
                .map_or(("", body.as_str()), |d| ("-", d));
            out.push_str(sign);
            out.push_str(&"0".repeat(pad));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&body);
        }
    }
    Ok(out)
}

#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn directive(it: &Interp<'_>, kind: char, v: &Value, precision: Option<usize>) -> R<String> {
    let as_int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        Value::Float(f) => Some(f.trunc() as i64),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(match kind {
        's' => {
            let s = it.to_s_value(v)?;
            match precision {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            }
        }
        'p' => v.inspect(),
        'd' | 'i' | 'u' => match as_int(v) {
            Some(i) => i.to_string(),
            None => {
                return it.raise(
                    "ArgumentError",
                    format!("invalid value for Integer(): {}", v.inspect()),
                );
            }
        },
        'x' => format!("{:x}", as_int(v).unwrap_or(0)),
        'X' => format!("{:X}", as_int(v).unwrap_or(0)),
        'o' => format!("{:o}", as_int(v).unwrap_or(0)),
        'b' => format!("{:b}", as_int(v).unwrap_or(0)),
        'f' => {
            let f = match v {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                other => other.to_s().trim().parse().unwrap_or(0.0),
            };
            format!("{:.*}", precision.unwrap_or(6), f)
        }
        other => return it.unsupported(format!("the format directive %{other}")),
    })
}
