//! `Integer` and `Float` methods, `Integer()`/`Float()` and `Math`.
//! Integers are 64-bit: a result that would need a bignum is an error.

use std::cmp::Ordering;

use crate::inspec::interp::{Args, Interp, R};
use crate::inspec::value::{Value, float_to_s, ruby_cmp};

#[allow(clippy::cast_precision_loss)]
fn as_f(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn overflow<T>(it: &Interp<'_>) -> R<T> {
    it.unsupported("an Integer beyond 64 bits")
}

fn arith(it: &Interp<'_>, recv: &Value, op: &str, other: &Value) -> R<Option<Value>> {
    if let (Value::Int(a), Value::Int(b)) = (recv, other) {
        let (a, b) = (*a, *b);
        let r = match op {
            "+" => a.checked_add(b),
            "-" => a.checked_sub(b),
            "*" => a.checked_mul(b),
            "/" | "div" => {
                if b == 0 {
                    return it.raise("ZeroDivisionError", "divided by 0");
                }
                Some(a.div_euclid(b) - i64::from(a.rem_euclid(b) != 0 && b < 0))
            }
            "%" | "modulo" => {
                if b == 0 {
                    return it.raise("ZeroDivisionError", "divided by 0");
                }
                Some(((a % b) + b) % b)
            }
            "**" | "pow" => {
                if b < 0 {
                    #[allow(clippy::cast_precision_loss)]
                    return Ok(Some(Value::Float((a as f64).powf(b as f64))));
                }
                u32::try_from(b).ok().and_then(|e| a.checked_pow(e))
            }
            "&" => Some(a & b),
            "|" => Some(a | b),
            "^" => Some(a ^ b),
            "<<" => u32::try_from(b).ok().and_then(|s| a.checked_shl(s)),
            ">>" => u32::try_from(b).ok().map(|s| a >> s.min(63)),
            _ => return Ok(None),
        };
        return match r {
            Some(v) => Ok(Some(Value::Int(v))),
            None => overflow(it),
        };
    }
    let (Some(a), Some(b)) = (as_f(recv), as_f(other)) else {
        if matches!(op, "+" | "-" | "*" | "/" | "%" | "**") {
            return it.raise(
                "TypeError",
                format!(
                    "{} can't be coerced into {}",
                    other.class_name(),
                    recv.class_name()
                ),
            );
        }
        return Ok(None);
    };
    Ok(Some(Value::Float(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => a / b,
        "%" | "modulo" => a.rem_euclid(b),
        "**" | "pow" => a.powf(b),
        _ => return Ok(None),
    })))
}

/// Numeric methods; `None` when `name` is not one.
///
/// # Errors
/// Division by zero, overflow, type errors.
pub fn call(it: &Interp<'_>, recv: &Value, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    if let Some(v) = arith(it, recv, name, &a0)? {
        return Ok(Some(v));
    }
    if let Some(v) = compare(it, recv, name, args)? {
        return Ok(Some(v));
    }
    if let Some(v) = iterate(it, recv, name, args)? {
        return Ok(Some(v));
    }
    let f = as_f(recv).unwrap_or(0.0);
    Ok(Some(match (recv, name) {
        (_, "to_i" | "to_int" | "truncate") => match recv {
            #[allow(clippy::cast_possible_truncation)]
            Value::Float(x) if x.is_finite() => Value::Int(x.trunc() as i64),
            Value::Float(_) => return it.raise("FloatDomainError", float_to_s(f)),
            _ => recv.clone(),
        },
        (_, "to_f") => Value::Float(f),
        (Value::Int(i), "to_s" | "inspect") => match a0 {
            Value::Int(base) if (2..=36).contains(&base) => {
                Value::str(to_base(*i, u32::try_from(base).unwrap_or(10)))
            }
            _ => Value::str(i.to_string()),
        },
        (_, "to_s" | "inspect") => Value::str(float_to_s(f)),
        (_, "to_r" | "rationalize" | "to_c") => return it.unsupported(format!("Numeric#{name}")),
        (Value::Int(i), "abs" | "magnitude") => Value::Int(i.checked_abs().unwrap_or(i64::MAX)),
        (_, "abs" | "magnitude") => Value::Float(f.abs()),
        (Value::Int(_), "round" | "floor" | "ceil") if !matches!(a0, Value::Int(n) if n < 0) => {
            recv.clone()
        }
        (_, "round" | "floor" | "ceil") => {
            let digits = match a0 {
                Value::Int(d) => i32::try_from(d).unwrap_or(0),
                _ => 0,
            };
            let m = 10f64.powi(digits);
            let x = f * m;
            let r = match name {
                "round" => x.round(),
                "floor" => x.floor(),
                _ => x.ceil(),
            } / m;
            #[allow(clippy::cast_possible_truncation)]
            if digits > 0 {
                Value::Float(r)
            } else {
                Value::Int(r as i64)
            }
        }
        (Value::Int(i), "even?") => Value::Bool(i % 2 == 0),
        (Value::Int(i), "odd?") => Value::Bool(i % 2 != 0),
        (Value::Int(i), "succ" | "next") => Value::Int(i.saturating_add(1)),
        (Value::Int(i), "pred") => Value::Int(i.saturating_sub(1)),
        (Value::Int(i), "chr") => Value::str(
            char::from_u32(u32::try_from(*i).unwrap_or(0))
                .map(String::from)
                .unwrap_or_default(),
        ),
        (Value::Int(i), "digits") => Value::array(
            i.abs()
                .to_string()
                .chars()
                .rev()
                .map(|c| Value::Int(i64::from(c.to_digit(10).unwrap_or(0))))
                .collect(),
        ),
        (Value::Int(i), "gcd") => Value::Int(gcd(
            *i,
            match a0 {
                Value::Int(b) => b,
                _ => 0,
            },
        )),
        (Value::Int(i), "bit_length") => Value::Int(i64::from(64 - i.leading_zeros())),
        (Value::Int(i), "~") => Value::Int(!i),
        (Value::Int(i), "-@") => Value::Int(i.checked_neg().unwrap_or(i64::MAX)),
        (_, "-@") => Value::Float(-f),
        (_, "+@") => recv.clone(),
        (_, "zero?") => Value::Bool(f == 0.0),
        (_, "positive?") => Value::Bool(f > 0.0),
        (_, "negative?") => Value::Bool(f < 0.0),
        (_, "nonzero?") => {
            if f == 0.0 {
                Value::Nil
            } else {
                recv.clone()
            }
        }
        (_, "integer?") => Value::Bool(matches!(recv, Value::Int(_))),
        (_, "finite?") => Value::Bool(f.is_finite()),
        (_, "infinite?") => {
            if f.is_infinite() {
                Value::Int(if f > 0.0 { 1 } else { -1 })
            } else {
                Value::Nil
            }
        }
        (_, "nan?") => Value::Bool(f.is_nan()),
        (_, "fdiv") => Value::Float(f / as_f(&a0).unwrap_or(f64::NAN)),
        (_, "divmod") => {
            let q = arith(it, recv, "/", &a0)?.unwrap_or(Value::Nil);
            let r = arith(it, recv, "%", &a0)?.unwrap_or(Value::Nil);
            Value::array(vec![q, r])
        }
        (_, "coerce") => Value::array(vec![a0, recv.clone()]),
        _ => return Ok(None),
    }))
}

fn compare(it: &Interp<'_>, recv: &Value, name: &str, args: &Args) -> R<Option<Value>> {
    let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
    Ok(Some(match name {
        "<=>" => ruby_cmp(recv, &a0).map_or(Value::Nil, |o| Value::Int(o as i64)),
        "<" | ">" | "<=" | ">=" => match ruby_cmp(recv, &a0) {
            Some(o) => Value::Bool(super::ordering_holds(name, o)),
            None => {
                return it.raise(
                    "ArgumentError",
                    format!(
                        "comparison of {} with {} failed",
                        recv.class_name(),
                        a0.inspect()
                    ),
                );
            }
        },
        "between?" => {
            let hi = args.get(1).cloned().unwrap_or(Value::Nil);
            Value::Bool(
                ruby_cmp(recv, &a0).is_some_and(|o| o != Ordering::Less)
                    && ruby_cmp(recv, &hi).is_some_and(|o| o != Ordering::Greater),
            )
        }
        "clamp" => {
            let hi = args.get(1).cloned().unwrap_or(Value::Nil);
            if ruby_cmp(recv, &a0) == Some(Ordering::Less) {
                a0
            } else if ruby_cmp(recv, &hi) == Some(Ordering::Greater) {
                hi
            } else {
                recv.clone()
            }
        }
        _ => return Ok(None),
    }))
}

fn iterate(it: &Interp<'_>, recv: &Value, name: &str, args: &Args) -> R<Option<Value>> {
    let Value::Int(n) = recv else { return Ok(None) };
    let (from, to, step) = match (name, args.get(0)) {
        ("times", _) => (0, n - 1, 1),
        ("upto", Some(Value::Int(t))) => (*n, *t, 1),
        ("downto", Some(Value::Int(t))) => (*n, *t, -1),
        ("step", Some(Value::Int(t))) => (
            *n,
            *t,
            match args.get(1) {
                Some(Value::Int(s)) if *s != 0 => *s,
                _ => 1,
            },
        ),
        _ => return Ok(None),
    };
    let Some(b) = &args.block else {
        return it.unsupported(format!("Integer#{name} without a block (an enumerator)"));
    };
    let mut i = from;
    while (step > 0 && i <= to) || (step < 0 && i >= to) {
        it.tick(1)?;
        match it.call_proc(b, vec![Value::Int(i)], None) {
            Ok(_) => {}
            Err(crate::inspec::interp::Flow::Break(v)) => return Ok(Some(v)),
            Err(e) => return Err(e),
        }
        i += step;
    }
    Ok(Some(recv.clone()))
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

fn to_base(i: i64, base: u32) -> String {
    if i == 0 {
        return "0".into();
    }
    let mut n = i.unsigned_abs();
    let mut digits = Vec::new();
    while n > 0 {
        let d = u32::try_from(n % u64::from(base)).unwrap_or(0);
        digits.push(char::from_digit(d, base).unwrap_or('?'));
        n /= u64::from(base);
    }
    let s: String = digits.into_iter().rev().collect();
    if i < 0 { format!("-{s}") } else { s }
}

/// `Integer(x, base)`: strict, raising ArgumentError on junk.
///
/// # Errors
/// ArgumentError for text that is not an integer.
pub fn kernel_integer(it: &Interp<'_>, v: &Value, base: Option<&Value>) -> R<Value> {
    match v {
        Value::Int(_) => Ok(v.clone()),
        #[allow(clippy::cast_possible_truncation)]
        Value::Float(f) => Ok(Value::Int(f.trunc() as i64)),
        Value::Str(s) => {
            let t = s.trim().replace('_', "");
            let (neg, body) = match t.strip_prefix('-') {
                Some(b) => (true, b.to_string()),
                None => (false, t.strip_prefix('+').unwrap_or(&t).to_string()),
            };
            let explicit = match base {
                Some(Value::Int(b)) => u32::try_from(*b).ok(),
                _ => None,
            };
            let (radix, digits) = match (explicit, body.get(..2)) {
                (None | Some(16), Some("0x" | "0X")) => (16, &body[2..]),
                (None | Some(2), Some("0b" | "0B")) => (2, &body[2..]),
                (None | Some(8), Some("0o" | "0O")) => (8, &body[2..]),
                (None, _) if body.len() > 1 && body.starts_with('0') => (8, &body[1..]),
                (Some(b), _) => (b, body.as_str()),
                (None, _) => (10, body.as_str()),
            };
            match i64::from_str_radix(digits, radix) {
                Ok(n) if !digits.is_empty() => Ok(Value::Int(if neg { -n } else { n })),
                _ => it.raise(
                    "ArgumentError",
                    format!("invalid value for Integer(): {}", v.inspect()),
                ),
            }
        }
        Value::Nil => it.raise("TypeError", "can't convert nil into Integer"),
        other => it.raise(
            "TypeError",
            format!("can't convert {} into Integer", other.class_name()),
        ),
    }
}

/// `Float(x)`: strict.
///
/// # Errors
/// ArgumentError for text that is not a number.
pub fn kernel_float(it: &Interp<'_>, v: &Value) -> R<Value> {
    match v {
        #[allow(clippy::cast_precision_loss)]
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        Value::Float(_) => Ok(v.clone()),
        Value::Str(s) => match s.trim().replace('_', "").parse::<f64>() {
            Ok(f) if !s.trim().is_empty() => Ok(Value::Float(f)),
            _ => it.raise(
                "ArgumentError",
                format!("invalid value for Float(): {}", v.inspect()),
            ),
        },
        other => it.raise(
            "TypeError",
            format!("can't convert {} into Float", other.class_name()),
        ),
    }
}

/// `Math.sqrt` and friends.
///
/// # Errors
/// Type errors on non-numbers.
pub fn math(it: &Interp<'_>, name: &str, args: &Args) -> R<Option<Value>> {
    let Some(x) = args.get(0).and_then(as_f) else {
        return it.raise("TypeError", "can't convert into Float");
    };
    Ok(Some(Value::Float(match name {
        "sqrt" => x.sqrt(),
        "log" => x.ln(),
        "log2" => x.log2(),
        "log10" => x.log10(),
        "exp" => x.exp(),
        "cbrt" => x.cbrt(),
        _ => return Ok(None),
    })))
}
