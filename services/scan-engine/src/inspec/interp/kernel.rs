//! Kernel functions, constants and built-in class methods. Everything that
//! would reach the scanner's own host (files, environment, processes,
//! sockets, the clock beyond today's date) is refused here by name.

use std::rc::Rc;

use super::{Args, Flow, Frame, Interp, Proc, ProcBody, R};
use crate::inspec::ast::RegexFlags;
use crate::inspec::core;
use crate::inspec::ruby_regex::{RubyRegex, escape};
use crate::inspec::support::{GemVersion, RubyException, TableSpec};
use crate::inspec::value::{ClassRef, RHash, Value};

/// Built-in constants profiles may name.
const BUILTIN: &[&str] = &[
    "Set",
    "Date",
    "DateTime",
    "Gem",
    "Gem::Version",
    "Integer",
    "Float",
    "String",
    "Array",
    "Hash",
    "Symbol",
    "Regexp",
    "Range",
    "NilClass",
    "TrueClass",
    "FalseClass",
    "Numeric",
    "Object",
    "Comparable",
    "Enumerable",
    "Exception",
    "StandardError",
    "RuntimeError",
    "ArgumentError",
    "TypeError",
    "NoMethodError",
    "NameError",
    "KeyError",
    "IndexError",
    "ZeroDivisionError",
    "StopIteration",
    "RangeError",
    "Inspec",
    "Inspec::Exceptions",
    "Inspec::Exceptions::ResourceSkipped",
    "Inspec::Exceptions::ResourceFailed",
    "FilterTable",
    "JSON",
    "YAML",
    "Psych",
    "Math",
    "File",
    "MatchData",
    "Proc",
];

/// Constants that would reach the scanner's host.
const REFUSED: &[&str] = &[
    "Dir",
    "IO",
    "ENV",
    "Kernel",
    "Process",
    "Open3",
    "Socket",
    "TCPSocket",
    "UDPSocket",
    "Net",
    "ObjectSpace",
    "Thread",
    "Fiber",
    "Ractor",
    "Signal",
    "FileUtils",
    "Pathname",
    "Tempfile",
    "STDIN",
    "STDOUT",
    "STDERR",
    "Time",
    "Random",
    "SecureRandom",
    "Etc",
    "PTY",
    "Marshal",
    "Binding",
    "RubyVM",
    "GC",
    "OpenSSL",
    "URI",
    "Resolv",
];

const REQUIRABLE: &[&str] = &[
    "json",
    "yaml",
    "psych",
    "date",
    "set",
    "rubygems",
    "inspec",
    "inspec/utils/filter",
    "inspec/resource",
    "resolv",
    "ipaddr",
    "time",
];

impl Interp<'_> {
    /// Receiver-less kernel functions; `None` when `name` is not one.
    pub(super) fn kernel_function(&self, name: &str, args: &Args, f: &Frame) -> R<Option<Value>> {
        if args.any_unknown()
            && matches!(
                name,
                "Integer" | "Float" | "String" | "Array" | "Hash" | "format" | "sprintf"
            )
        {
            return Ok(Some(Value::Unknown));
        }
        let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
        Ok(Some(match name {
            "puts" | "print" | "warn" | "pp" | "require_relative" | "private" | "public"
            | "protected" | "module_function" | "attr_reader" | "attr_accessor" => Value::Nil,
            "p" => a0,
            "require" | "load" => {
                let what = a0.to_s();
                if REQUIRABLE
                    .iter()
                    .any(|r| what == *r || what.starts_with("inspec/"))
                {
                    Value::Bool(true)
                } else {
                    return self.unsupported(format!("require '{what}'"));
                }
            }
            "raise" | "fail" => return self.kernel_raise(args).map(Some),
            "format" | "sprintf" => {
                let Some(Value::Str(fmt)) = args.get(0) else {
                    return self.raise("TypeError", "format needs a string");
                };
                self.new_str(core::format::format(self, fmt, &args.positional()[1..])?)?
            }
            "Integer" => core::numeric::kernel_integer(self, &a0, args.get(1))?,
            "Float" => core::numeric::kernel_float(self, &a0)?,
            "String" => self.new_str(self.to_s_value(&a0)?)?,
            "Array" => match a0 {
                Value::Array(_) => a0,
                Value::Nil => Value::array(Vec::new()),
                other => Value::array(self.to_list(&other)?),
            },
            "Hash" => match a0 {
                Value::Nil => Value::hash(RHash::new()),
                other => other,
            },
            "lambda" | "proc" => match &args.block {
                Some(b) => Value::Proc(Rc::new(Proc {
                    body: match &b.body {
                        ProcBody::Block {
                            block,
                            env,
                            self_val,
                            def_class,
                        } => ProcBody::Block {
                            block: block.clone(),
                            env: env.clone(),
                            self_val: self_val.clone(),
                            def_class: def_class.clone(),
                        },
                        ProcBody::Symbol(s) => ProcBody::Symbol(s.clone()),
                    },
                    lambda: name == "lambda",
                })),
                None => {
                    return self.raise(
                        "ArgumentError",
                        "tried to create Proc object without a block",
                    );
                }
            },
            "loop" => {
                let Some(b) = &args.block else {
                    return self.unsupported("`loop` without a block");
                };
                loop {
                    self.tick(1)?;
                    match self.call_proc(b, Vec::new(), None) {
                        Ok(_) => {}
                        Err(Flow::Break(v)) => break v,
                        Err(Flow::Raise(e, _)) if e.class == "StopIteration" => break Value::Nil,
                        Err(e) => return Err(e),
                    }
                }
            }
            "block_given?" => Value::Bool(f.block.is_some()),
            "binding"
            | "eval"
            | "instance_eval"
            | "class_eval"
            | "define_method"
            | "instance_variable_set"
            | "method"
            | "catch"
            | "throw"
            | "ObjectSpace" => {
                return self.unsupported(format!("`{name}`"));
            }
            "system" | "exec" | "spawn" | "fork" | "open" | "syscall" | "trap" | "exit"
            | "exit!" | "abort" | "at_exit" | "sleep" | "gets" | "readline" | "readlines"
            | "select" | "srand" | "rand" | "`" => {
                return self.refuse(format!("`{name}`"));
            }
            _ => return Ok(None),
        }))
    }

    fn kernel_raise(&self, args: &Args) -> R<Value> {
        let (class, message) = match (args.get(0), args.get(1)) {
            (None, _) => (
                "RuntimeError".to_string(),
                "unhandled exception".to_string(),
            ),
            (Some(Value::Str(m)), _) => ("RuntimeError".to_string(), m.to_string()),
            (Some(Value::Exception(e)), _) => (e.class.clone(), e.message.clone()),
            (Some(Value::Class(c)), m) => {
                let name = match c {
                    ClassRef::Builtin(n) => (*n).to_string(),
                    ClassRef::User(c) => c.name.clone(),
                };
                let short = name.rsplit("::").next().unwrap_or(&name).to_string();
                (short, m.map(Value::to_s).unwrap_or_else(|| name.clone()))
            }
            (Some(other), _) => ("RuntimeError".to_string(), other.to_s()),
        };
        Err(Flow::Raise(
            Rc::new(RubyException { class, message }),
            self.at.get(),
        ))
    }

    /// Resolves `A::B::C`.
    ///
    /// # Errors
    /// NameError for an unknown constant; refusal for host-reaching ones.
    pub(super) fn constant(&self, path: &[String], f: &Frame) -> R<Value> {
        let full = path.join("::");
        let first = &path[0];
        if REFUSED.contains(&first.as_str()) {
            return self.refuse(format!("the constant `{full}`"));
        }
        let mut cls = f.def_class.clone();
        while let Some(c) = cls {
            if let Some(v) = c.consts.borrow().get(first) {
                return self.const_rest(v.clone(), &path[1..], &full);
            }
            cls = c.superclass.clone();
        }
        if let Some(c) = self.classes.borrow().get(&full).cloned() {
            return Ok(Value::Class(ClassRef::User(c)));
        }
        if let Some(c) = self.classes.borrow().get(first).cloned() {
            return self.const_rest(Value::Class(ClassRef::User(c)), &path[1..], &full);
        }
        if let Some(v) = self.consts.borrow().get(first).cloned() {
            return self.const_rest(v, &path[1..], &full);
        }
        if let Some(b) = BUILTIN.iter().find(|b| **b == full) {
            return Ok(Value::Class(ClassRef::Builtin(b)));
        }
        match full.as_str() {
            "Float::INFINITY" => Ok(Value::Float(f64::INFINITY)),
            "Float::NAN" => Ok(Value::Float(f64::NAN)),
            "Integer::MAX" => Ok(Value::Int(i64::MAX)),
            _ if BUILTIN.contains(&first.as_str()) => {
                self.unsupported(format!("the constant `{full}`"))
            }
            _ => self.raise("NameError", format!("uninitialized constant {full}")),
        }
    }

    fn const_rest(&self, v: Value, rest: &[String], full: &str) -> R<Value> {
        let mut v = v;
        for name in rest {
            v = match &v {
                Value::Class(ClassRef::User(c)) => {
                    let inner = c.consts.borrow().get(name).cloned();
                    match inner {
                        Some(x) => x,
                        None => match self.classes.borrow().get(name).cloned() {
                            Some(c) => Value::Class(ClassRef::User(c)),
                            None => {
                                return self
                                    .raise("NameError", format!("uninitialized constant {full}"));
                            }
                        },
                    }
                }
                _ => return self.raise("NameError", format!("uninitialized constant {full}")),
            };
        }
        Ok(v)
    }

    pub(super) fn set_constant(&self, name: &str, v: Value, f: &Frame) {
        match &f.def_class {
            Some(c) => {
                c.consts.borrow_mut().insert(name.to_string(), v);
            }
            None => {
                self.consts.borrow_mut().insert(name.to_string(), v);
            }
        }
    }

    /// Class methods of built-in and profile classes.
    pub(super) fn class_call(&self, c: &ClassRef, name: &str, args: &Args) -> R<Option<Value>> {
        match c {
            ClassRef::User(cls) => self.user_class_call(cls, name, args),
            ClassRef::Builtin(b) => self.builtin_class_call(b, name, args),
        }
    }

    fn builtin_class_call(&self, class: &str, name: &str, args: &Args) -> R<Option<Value>> {
        let a0 = args.get(0).cloned().unwrap_or(Value::Nil);
        Ok(Some(match (class, name) {
            ("Set", "new") => {
                let mut s = RHash::new();
                for v in self.to_list(&a0)? {
                    s.insert(v, Value::Bool(true));
                }
                Value::Set(Rc::new(std::cell::RefCell::new(s)))
            }
            ("Gem::Version", "new" | "create") => match GemVersion::parse(&a0.to_s()) {
                Some(v) => Value::Version(Rc::new(v)),
                None => {
                    return self.raise(
                        "ArgumentError",
                        format!("Malformed version number string {}", a0.to_s()),
                    );
                }
            },
            ("Gem::Version", "correct?") => Value::Bool(GemVersion::parse(&a0.to_s()).is_some()),
            ("Date" | "DateTime", _) => return core::date::class_call(self, name, args),
            ("Regexp", "new" | "compile") => {
                if let Value::Regex(_) = a0 {
                    return Ok(Some(a0));
                }
                let ignore_case = args.get(1).is_some_and(|o| match o {
                    Value::Int(i) => i & 1 == 1,
                    other => other.truthy(),
                });
                let flags = RegexFlags {
                    ignore_case,
                    ..RegexFlags::default()
                };
                match RubyRegex::new(&a0.to_s(), flags) {
                    Ok(r) => Value::Regex(Rc::new(r)),
                    Err(e) => return self.unsupported(e),
                }
            }
            ("Regexp", "escape" | "quote") => self.new_str(escape(&a0.to_s()))?,
            ("Regexp", "union") => {
                let items = match &a0 {
                    Value::Array(_) => self.to_list(&a0)?,
                    _ => args.positional().to_vec(),
                };
                let src: Vec<String> = items
                    .iter()
                    .map(|v| match v {
                        Value::Regex(r) => r.to_s(),
                        other => escape(&other.to_s()),
                    })
                    .collect();
                match RubyRegex::new(&src.join("|"), RegexFlags::default()) {
                    Ok(r) => Value::Regex(Rc::new(r)),
                    Err(e) => return self.unsupported(e),
                }
            }
            ("Hash", "new") => {
                let mut h = RHash::new();
                h.default = args.get(0).cloned();
                h.default_proc = args.block.clone();
                Value::hash(h)
            }
            ("Array", "new") => {
                let n = usize::try_from(match a0 {
                    Value::Int(n) => n,
                    _ => 0,
                })
                .unwrap_or(0);
                self.alloc(n * 16)?;
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    out.push(match &args.block {
                        Some(b) => self.call_proc(
                            b,
                            vec![Value::Int(i64::try_from(i).unwrap_or(0))],
                            None,
                        )?,
                        None => args.get(1).cloned().unwrap_or(Value::Nil),
                    });
                }
                Value::array(out)
            }
            ("String", "new") => self.new_str(a0.to_s())?,
            ("JSON", "parse") => core::json::parse(self, &a0.to_s())?,
            ("JSON", "generate" | "dump" | "pretty_generate") => {
                self.new_str(core::json::generate(&a0)?)?
            }
            ("YAML" | "Psych", "load" | "safe_load" | "unsafe_load") => {
                core::json::parse_yaml(self, &a0.to_s())?
            }
            ("Inspec", "resource") => Value::Class(ClassRef::Builtin("Inspec::Resource")),
            ("FilterTable", "create") => {
                Value::TableSpec(Rc::new(std::cell::RefCell::new(TableSpec::default())))
            }
            ("Math", _) => return core::numeric::math(self, name, args),
            ("File", _) => return core::misc::file_path_call(self, name, args),
            ("Integer" | "Float" | "Numeric" | "String" | "Array" | "Hash" | "Symbol", "===") => {
                Value::Bool(self.is_a(&a0, &Value::Class(ClassRef::Builtin(static_name(class)))))
            }
            (_, "name" | "to_s") => Value::str(class),
            (c, "new") if c.ends_with("Error") || c == "Exception" => {
                let short = c.rsplit("::").next().unwrap_or(c);
                Value::Exception(Rc::new(RubyException::new(short, a0.to_s())))
            }
            _ => return Ok(None),
        }))
    }
}

/// The built-in class named `name` (short names of exceptions included).
pub fn builtin_name(name: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|b| **b == name || b.rsplit("::").next() == Some(name))
        .copied()
}

fn static_name(class: &str) -> &'static str {
    BUILTIN
        .iter()
        .find(|b| **b == class)
        .copied()
        .unwrap_or("Object")
}
