//! CEL for admission policies: one environment (the standard library plus
//! the `strings`, `lists` and `math` extensions Kubernetes also enables), a
//! bounded compile cache, JSON to CEL values, and cel-go's wording for the
//! errors a policy author sees.
//!
//! The interpreter is the `cel` crate (cel-rust). Kubernetes-only libraries
//! (`authorizer`, quantities, IPs and CIDRs, `isSorted`, optionals) are not
//! declared: an expression using them fails to evaluate, which the policy's
//! `failurePolicy` then decides, as a missing function would upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::objects::Key;
use cel::{Context, Env, ExecutionError, Program, Value as Cel};
use serde_json::Value;

/// Compiled programs kept at most; the cache is cleared when it fills, so a
/// stream of distinct expressions costs recompiles, never memory.
const CACHE_LIMIT: usize = 1024;

fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        for ext in [
            cel::extensions::strings as fn(&mut Env) -> _,
            cel::extensions::lists,
            cel::extensions::math,
        ] {
            // Each extension declares distinct functions; a clash would be a
            // bug in the crate, and the standard library still works.
            let _ = env.add_extension(ext);
        }
        Arc::new(env)
    })
}

type Cache = Mutex<HashMap<String, Arc<Program>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// Compiles `source`, or returns the parser's message in cel-go's format
/// (`ERROR: <input>:1:5: Syntax error: …` with the source line and a caret).
pub fn compile(source: &str) -> Result<Arc<Program>, String> {
    if let Some(p) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(source)
    {
        return Ok(p.clone());
    }
    let compiled = std::panic::catch_unwind(|| env().compile(source))
        .map_err(|_| "ERROR: <input>:1:1: the expression could not be parsed".to_string())?
        .map_err(|e| e.to_string())?;
    let program = Arc::new(compiled);
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(source.to_string(), program.clone());
    Ok(program)
}

/// A JSON value as CEL sees it: integers as `int` (Kubernetes' int64), maps
/// with string keys, `null` as `null`.
pub fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(Cel::Int)
            .or_else(|| n.as_u64().map(Cel::UInt))
            .unwrap_or_else(|| Cel::Float(n.as_f64().unwrap_or_default())),
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<Key, Cel> = m
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Cel::Map(map.into())
        }
    }
}

/// The variables one evaluation sees (`object`, `oldObject`, `request`,
/// `params`, `namespaceObject`, `variables`).
#[derive(Default, Clone)]
pub struct Activation {
    bindings: Vec<(&'static str, Cel)>,
}

impl Activation {
    /// Binds `name` to a JSON value.
    pub fn bind(&mut self, name: &'static str, value: &Value) {
        self.bind_cel(name, to_cel(value));
    }

    /// Binds `name` to a CEL value.
    pub fn bind_cel(&mut self, name: &'static str, value: Cel) {
        self.bindings.retain(|(n, _)| *n != name);
        self.bindings.push((name, value));
    }

    /// Runs `program` (never panics: a panic inside the interpreter is an
    /// evaluation error).
    pub fn eval(&self, program: &Program) -> Result<Cel, String> {
        let mut ctx = Context::with_env(env().clone());
        for (name, value) in &self.bindings {
            ctx.add_variable_from_value(*name, value.clone());
        }
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(&ctx)))
            .map_err(|_| "internal error: the CEL interpreter failed".to_string())?
            .map_err(|e| error_text(&e))
    }
}

/// An execution error in cel-go's words where the two differ in a way
/// policy authors match on (`no such key: x`).
pub fn error_text(e: &ExecutionError) -> String {
    match e {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::UndeclaredReference(r) => format!("undeclared reference to '{r}'"),
        other => other.to_string(),
    }
}

/// A CEL value back to JSON, for messages and variables (maps with
/// non-string keys become strings; values without a JSON form, null).
pub fn to_json(v: &Cel) -> Value {
    match v {
        Cel::Null => Value::Null,
        Cel::Bool(b) => Value::Bool(*b),
        Cel::Int(i) => Value::from(*i),
        Cel::UInt(u) => Value::from(*u),
        Cel::Float(f) => Value::from(*f),
        Cel::String(s) => Value::String(s.to_string()),
        Cel::List(l) => Value::Array(l.iter().map(to_json).collect()),
        Cel::Map(m) => Value::Object(
            m.map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Key::String(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(expr: &str, object: Value) -> Result<Cel, String> {
        let mut a = Activation::default();
        a.bind("object", &object);
        a.bind("oldObject", &Value::Null);
        a.eval(&*compile(expr)?)
    }

    #[test]
    fn kubernetes_style_expressions_evaluate() {
        let obj = json!({"metadata": {"name": "scanfleet-scan-1", "labels": {"a/b": "c"}},
                         "rules": [{"verbs": ["get"], "resourceNames": ["p"]}], "n": 600});
        for (expr, want) in [
            (
                "has(object.metadata.labels) && object.metadata.labels['a/b'] == 'c'",
                true,
            ),
            ("!has(object.spec)", true),
            ("object.metadata.name.startsWith('scanfleet-scan-')", true),
            (
                "object.metadata.name.matches('^scanfleet-scan-[0-9]+$')",
                true,
            ),
            ("object.rules.all(r, size(r.resourceNames) == 1)", true),
            ("object.rules.exists(r, 'watch' in r.verbs)", false),
            ("object.n <= 1800 && oldObject == null", true),
            ("object.metadata.name.split('-').size() == 3", true),
            (
                "object.metadata.name.lowerAscii() == object.metadata.name",
                true,
            ),
        ] {
            assert_eq!(eval(expr, obj.clone()), Ok(Cel::Bool(want)), "{expr}");
        }
    }

    #[test]
    fn errors_read_as_cel_go_writes_them() {
        assert_eq!(
            eval("object.spec.hostPID", json!({})),
            Err("no such key: spec".into())
        );
        let syntax = eval("object.all(x,", json!({})).unwrap_err();
        assert!(syntax.starts_with("ERROR: <input>:1:"), "{syntax}");
        assert!(syntax.contains('^'), "{syntax}");
    }

    #[test]
    fn values_round_trip_through_json() {
        let v = json!({"a": [1, "x", true, null], "b": {"c": 2.5}});
        assert_eq!(to_json(&to_cel(&v)), v);
    }
}
