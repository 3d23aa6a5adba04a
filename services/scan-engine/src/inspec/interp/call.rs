//! Method dispatch: receiver-less calls (locals, self's methods, top-level
//! `def`s, the DSL, resources, kernel functions), calls on values (by type),
//! argument binding for methods and blocks, and the methods every object has.

use std::rc::Rc;
use std::sync::Arc;

use super::{Flow, Frame, Interp, Proc, ProcBody, R, Scope};
use crate::inspec::ast::{Call, Loc, MethodDef, Param, Params};
use crate::inspec::core;
use crate::inspec::library::ClassDef;
use crate::inspec::value::{ClassRef, RHash, Value, ruby_eq};
use crate::inspec::{filter_table, library, matchers, resources};

/// Evaluated arguments: positionals (keyword pairs as a trailing hash) and a block.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// Positional values; when `has_kw`, the last one is the keyword hash.
    pub pos: Vec<Value>,
    /// The block, if any.
    pub block: Option<Rc<Proc>>,
    /// Whether the call site passed `key: value` pairs.
    pub has_kw: bool,
}

impl Args {
    /// No arguments.
    pub fn none() -> Self {
        Self::default()
    }

    /// One argument.
    pub fn one(v: Value) -> Self {
        Self::new(vec![v])
    }

    /// These positional arguments.
    pub fn new(pos: Vec<Value>) -> Self {
        Self {
            pos,
            block: None,
            has_kw: false,
        }
    }

    /// Positional argument `i` (the keyword hash excluded).
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.positional().get(i)
    }

    /// Positional arguments without the keyword hash.
    pub fn positional(&self) -> &[Value] {
        if self.has_kw {
            &self.pos[..self.pos.len() - 1]
        } else {
            &self.pos
        }
    }

    /// A keyword argument, or a key of a trailing options hash.
    pub fn kw(&self, name: &str) -> Option<Value> {
        match self.pos.last() {
            Some(Value::Hash(h)) => {
                let h = h.borrow();
                h.get(&Value::sym(name))
                    .or_else(|| h.get(&Value::str(name)))
                    .cloned()
            }
            _ => None,
        }
    }

    /// Whether any argument is unknown.
    pub fn any_unknown(&self) -> bool {
        self.pos.iter().any(|v| match v {
            Value::Unknown => true,
            Value::Hash(h) => h.borrow().entries().iter().any(|(_, v)| v.is_unknown()),
            _ => false,
        })
    }
}

fn string_mutator(name: &str) -> Option<&str> {
    Some(match name {
        "<<" | "concat" => "+",
        "strip!" => "strip",
        "lstrip!" => "lstrip",
        "rstrip!" => "rstrip",
        "chomp!" => "chomp",
        "chop!" => "chop",
        "downcase!" => "downcase",
        "upcase!" => "upcase",
        "capitalize!" => "capitalize",
        "squeeze!" => "squeeze",
        "gsub!" => "gsub",
        "sub!" => "sub",
        "tr!" => "tr",
        "delete!" => "delete",
        "replace" => "replace",
        _ => return None,
    })
}

impl Interp<'_> {
    pub(super) fn eval_call(&self, c: &Call, loc: Loc, f: &Frame) -> R<Value> {
        let Some(recv_node) = &c.recv else {
            if c.vcall
                && let Some(v) = f.env.get(&c.name)
            {
                return Ok(v);
            }
            let mut args = self.eval_args(&c.args, f)?;
            if let Some(b) = &c.block {
                args.block = proc_of(self.make_proc(b, f, false));
            }
            self.at.set(loc);
            return self.call_function(&c.name, args, loc, f);
        };
        let recv = self.eval(recv_node, f)?;
        if c.safe_nav && recv.is_nil() {
            return Ok(Value::Nil);
        }
        let mut args = self.eval_args(&c.args, f)?;
        if let Some(b) = &c.block {
            args.block = proc_of(self.make_proc(b, f, false));
        }
        self.at.set(loc);
        if let (Value::Str(old), Some(plain)) = (&recv, string_mutator(&c.name)) {
            let new = self.call_method(&recv, plain, args, loc)?;
            let changed = !ruby_eq(&new, &Value::Str(old.clone()));
            self.rebind(recv_node, new.clone(), f);
            return Ok(if c.name.ends_with('!') && !changed {
                Value::Nil
            } else {
                new
            });
        }
        self.call_method(&recv, &c.name, args, loc)
    }

    /// Writes a new string back to the variable a bang method was called on.
    fn rebind(&self, node: &crate::inspec::ast::Node, v: Value, f: &Frame) {
        use crate::inspec::ast::Kind;
        match &node.kind {
            Kind::Local(n) => f.env.set(n, v),
            Kind::Ivar(n) => self.ivar_set(&f.self_val, n, v),
            Kind::Call(c) if c.vcall && c.recv.is_none() => f.env.set(&c.name, v),
            _ => {}
        }
    }

    /// A call without a receiver.
    ///
    /// # Errors
    /// As the called code; an unknown name is an unsupported construct.
    pub fn call_function(&self, name: &str, args: Args, loc: Loc, f: &Frame) -> R<Value> {
        match &f.self_val {
            Value::Object(o) if library::responds(o, name) => {
                return self.call_method(&f.self_val, name, args, loc);
            }
            Value::Class(ClassRef::User(cls)) => {
                if let Some(v) = self.class_body_call(cls, name, &args, f)? {
                    return Ok(v);
                }
            }
            Value::Row(row) => {
                if let Some(v) = crate::inspec::support::row_field(row, name) {
                    return Ok(v);
                }
            }
            _ => {}
        }
        let top = self.methods.borrow().get(name).cloned();
        if let Some(m) = top {
            return self.call_user_method(f.self_val.clone(), &m, None, args);
        }
        if let Some(v) = self.dsl_call(name, &args, loc, f)? {
            return Ok(v);
        }
        if let Some(v) = self.resource_call(name, &args)? {
            return Ok(v);
        }
        if let Some(v) = self.kernel_function(name, &args, f)? {
            return Ok(v);
        }
        if let Value::Object(o) = &f.self_val
            && let Some(mm) = o.class.find_method("method_missing")
        {
            let mut a = args.clone();
            a.pos.insert(0, Value::sym(name));
            return self.call_user_method(f.self_val.clone(), &mm.0, Some(mm.1), a);
        }
        self.unsupported(format!(
            "`{name}` (not a resource, matcher or method this interpreter knows)"
        ))
    }

    /// Constructs a resource by name: the profile's own resource classes win
    /// over built-in ones, as in InSpec.
    ///
    /// # Errors
    /// As the resource's constructor.
    pub fn resource_call(&self, name: &str, args: &Args) -> R<Option<Value>> {
        let custom = self
            .classes
            .borrow()
            .values()
            .find(|c| c.resource_name.borrow().as_deref() == Some(name))
            .cloned();
        if let Some(cls) = custom {
            if args.any_unknown() {
                self.dynamic_call(format!("{name}(...)"));
                return Ok(Some(Value::Unknown));
            }
            return self.instantiate(&cls, args.clone()).map(Some);
        }
        resources::construct(self, name, args)
    }

    /// Calls `name` on `recv`.
    ///
    /// # Errors
    /// As the method; an unknown method on a core value is unsupported, on
    /// nil or a profile object it is Ruby's NoMethodError.
    pub fn call_method(&self, recv: &Value, name: &str, args: Args, loc: Loc) -> R<Value> {
        self.tick(1)?;
        if recv.is_unknown() || (args.any_unknown() && !matches!(recv, Value::Matcher(_))) {
            return self.unknown_call(&args);
        }
        let found = match recv {
            Value::Object(o) => library::object_call(self, o, recv, name, &args)?,
            Value::Resource(r) => resources::call(self, r, name, &args)?,
            Value::Table(t) => filter_table::call(self, t, name, &args)?,
            Value::Row(r) => filter_table::row_call(r, name),
            Value::Matcher(m) => matchers::chain(self, m, name, &args)?,
            Value::Class(c) => self.class_call(c, name, &args)?,
            Value::Inspec => self.resource_call(name, &args)?,
            Value::TableSpec(spec) => filter_table::spec_call(self, recv, spec, name, &args)?,
            _ => core::call(self, recv, name, &args)?,
        };
        if let Some(v) = found {
            return Ok(v);
        }
        if let Some(v) = self.universal(recv, name, &args, loc)? {
            return Ok(v);
        }
        match recv {
            Value::Nil | Value::Object(_) | Value::Bool(_) => self.raise(
                "NoMethodError",
                format!("undefined method `{name}' for {}", recv.inspect()),
            ),
            _ => self.unsupported(format!("method `{}#{name}`", recv.class_name())),
        }
    }

    /// A call on an unknown value: the block still runs once (with unknown
    /// arguments) so calls inside it can be planned.
    fn unknown_call(&self, args: &Args) -> R<Value> {
        if let Some(b) = &args.block {
            match self.call_proc(b, vec![Value::Unknown, Value::Unknown], None) {
                Ok(_) | Err(Flow::Raise(..) | Flow::Next(_) | Flow::Break(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Value::Unknown)
    }

    /// Methods every object answers.
    fn universal(&self, recv: &Value, name: &str, args: &Args, loc: Loc) -> R<Option<Value>> {
        let arg0 = args.get(0).cloned().unwrap_or(Value::Nil);
        Ok(Some(match name {
            "nil?" => Value::Bool(recv.is_nil()),
            "==" | "eql?" => Value::Bool(self.equal(recv, &arg0)?),
            "!=" => Value::Bool(!self.equal(recv, &arg0)?),
            "equal?" => Value::Bool(recv.identity() != 0 && recv.identity() == arg0.identity()),
            "!" => Value::Bool(!recv.truthy()),
            "===" => Value::Bool(self.case_eq(recv, &arg0)?.unwrap_or(false)),
            "=~" => Value::Nil,
            "is_a?" | "kind_of?" | "instance_of?" => Value::Bool(self.is_a(recv, &arg0)),
            "respond_to?" => Value::Bool(self.responds(recv, &arg0.to_s())),
            "class" => Value::Class(class_of(recv)),
            "freeze" | "dup" | "clone" | "itself" | "to_self" => recv.clone(),
            "frozen?" => Value::Bool(matches!(recv, Value::Sym(_) | Value::Int(_) | Value::Nil)),
            "to_s" => self.new_str(self.to_s_value(recv)?)?,
            "inspect" => self.new_str(recv.inspect())?,
            "hash" | "object_id" => Value::Int(i64::try_from(recv.identity()).unwrap_or(0)),
            "tap" => {
                if let Some(b) = &args.block {
                    self.call_proc(b, vec![recv.clone()], None)?;
                }
                recv.clone()
            }
            "then" | "yield_self" => match &args.block {
                Some(b) => self.call_proc(b, vec![recv.clone()], None)?,
                None => recv.clone(),
            },
            "send" | "public_send" | "__send__" => {
                let mut rest = args.clone();
                if !rest.pos.is_empty() {
                    rest.pos.remove(0);
                }
                return self.call_method(recv, &arg0.to_s(), rest, loc).map(Some);
            }
            "instance_variable_get" => self.ivar_get(recv, arg0.to_s().trim_start_matches('@')),
            "to_json" => self.new_str(core::json::generate(recv)?)?,
            _ => return Ok(None),
        }))
    }

    /// Ruby `==`, calling a profile class's own `==` when it has one.
    ///
    /// # Errors
    /// As that method.
    pub fn equal(&self, a: &Value, b: &Value) -> R<bool> {
        if let Value::Object(o) = a
            && let Some((m, owner)) = o.class.find_method("==")
        {
            let v = self.call_user_method(a.clone(), &m, Some(owner), Args::one(b.clone()))?;
            return Ok(v.truthy());
        }
        Ok(ruby_eq(a, b))
    }

    /// Case equality (`when`, `grep`); `None` when a side is unknown.
    ///
    /// # Errors
    /// As a proc pattern.
    pub fn case_eq(&self, pattern: &Value, v: &Value) -> R<Option<bool>> {
        if pattern.is_unknown() || v.is_unknown() {
            return Ok(None);
        }
        Ok(Some(match pattern {
            Value::Regex(r) => match v {
                Value::Str(s) | Value::Sym(s) => r.re.is_match(s),
                _ => false,
            },
            Value::Range(_) => core::range::includes(pattern, v),
            Value::Class(_) => self.is_a(v, pattern),
            Value::Proc(p) => self.call_proc(p, vec![v.clone()], None)?.truthy(),
            Value::Set(s) => s.borrow().get(v).is_some(),
            _ => self.equal(pattern, v)?,
        }))
    }

    /// `is_a?` against a class value.
    pub fn is_a(&self, v: &Value, class: &Value) -> bool {
        if let Value::Exception(e) = v {
            return match class {
                Value::Class(ClassRef::Builtin(n)) => e.is_a(n.rsplit("::").next().unwrap_or(n)),
                Value::Class(ClassRef::User(c)) => {
                    e.is_a(c.name.rsplit("::").next().unwrap_or(&c.name))
                }
                _ => false,
            };
        }
        match class {
            Value::Class(ClassRef::User(c)) => match v {
                Value::Object(o) => o.class.is_a(c),
                _ => false,
            },
            Value::Class(ClassRef::Builtin(n)) => builtin_ancestors(v).contains(n),
            _ => false,
        }
    }

    fn responds(&self, v: &Value, name: &str) -> bool {
        match v {
            Value::Object(o) => library::responds(o, name),
            Value::Resource(r) => resources::responds(r, name),
            Value::Nil => matches!(name, "to_s" | "to_a" | "to_i" | "nil?"),
            _ => core::responds(v, name),
        }
    }

    /// Ruby `to_s`, calling a profile class's own `to_s`.
    ///
    /// # Errors
    /// As that method.
    pub fn to_s_value(&self, v: &Value) -> R<String> {
        match v {
            Value::Object(o) => {
                if let Some((m, owner)) = o.class.find_method("to_s") {
                    return Ok(self
                        .call_user_method(v.clone(), &m, Some(owner), Args::none())?
                        .to_s());
                }
                Ok(library::default_display(o))
            }
            Value::Table(t) => Ok(t.display.clone()),
            other => Ok(other.to_s()),
        }
    }

    /// The elements of a list-like value (splats, `for`, `Array()`).
    ///
    /// # Errors
    /// When a range is too large to expand.
    pub fn to_list(&self, v: &Value) -> R<Vec<Value>> {
        Ok(match v {
            Value::Array(a) => a.borrow().clone(),
            Value::Nil => Vec::new(),
            Value::Hash(h) => h
                .borrow()
                .entries()
                .iter()
                .map(|(k, v)| Value::array(vec![k.clone(), v.clone()]))
                .collect(),
            Value::Set(s) => s
                .borrow()
                .entries()
                .iter()
                .map(|(k, _)| k.clone())
                .collect(),
            Value::Range(_) => core::range::expand(self, v)?,
            Value::Table(t) => t.rows.iter().map(|r| Value::Row(r.clone())).collect(),
            other => vec![other.clone()],
        })
    }

    /// Calls a profile method with `self_val` as self.
    ///
    /// # Errors
    /// As the method body; wrong arity is an ArgumentError.
    pub fn call_user_method(
        &self,
        self_val: Value,
        def: &Arc<MethodDef>,
        owner: Option<Rc<ClassDef>>,
        args: Args,
    ) -> R<Value> {
        let _guard = self.budget.enter().map_err(|e| self.exhausted(e))?;
        self.tick(1)?;
        let env = Scope::new(None);
        let frame = Frame {
            self_val,
            env: env.clone(),
            block: args.block.clone(),
            def_class: owner,
            method: Some((def.name.clone(), args.pos.clone())),
        };
        self.bind_params(&def.params, &frame, args.pos, args.has_kw, true)?;
        if let Some(b) = &def.params.block {
            env.define(b, args.block.map_or(Value::Nil, Value::Proc));
        }
        match self.eval_opt(def.body.as_deref(), &frame) {
            Ok(v) | Err(Flow::Return(v)) => Ok(v),
            Err(e) => Err(e),
        }
    }

    /// Calls a proc with `args` (and an optional block for it).
    ///
    /// # Errors
    /// As the block body.
    pub fn call_proc(&self, p: &Rc<Proc>, args: Vec<Value>, block: Option<Rc<Proc>>) -> R<Value> {
        self.call_proc_as(p, args, block, None)
    }

    /// Calls a proc with `self` replaced (`instance_eval`, FilterTable `where { }`).
    ///
    /// # Errors
    /// As the block body.
    pub fn call_proc_as(
        &self,
        p: &Rc<Proc>,
        args: Vec<Value>,
        block: Option<Rc<Proc>>,
        self_override: Option<Value>,
    ) -> R<Value> {
        let _guard = self.budget.enter().map_err(|e| self.exhausted(e))?;
        // Every call costs a step, so even an empty block in an endless loop runs out.
        self.tick(1)?;
        match &p.body {
            ProcBody::Symbol(name) => {
                let mut it = args.into_iter();
                let recv = it.next().unwrap_or(Value::Nil);
                self.call_method(&recv, name, Args::new(it.collect()), self.at.get())
            }
            ProcBody::Block {
                block: b,
                env,
                self_val,
                def_class,
            } => {
                let frame = Frame {
                    self_val: self_override.unwrap_or_else(|| self_val.clone()),
                    env: Scope::new(Some(env.clone())),
                    block,
                    def_class: def_class.clone(),
                    method: None,
                };
                self.bind_params(&b.params, &frame, args, false, p.lambda)?;
                match self.eval_opt(b.body.as_deref(), &frame) {
                    Ok(v) | Err(Flow::Next(v)) => Ok(v),
                    Err(Flow::Return(v)) if p.lambda => Ok(v),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Binds parameters into `frame.env`. Blocks (non-strict) auto-splat a
    /// single array over several parameters and pad or drop extras.
    fn bind_params(
        &self,
        params: &Params,
        frame: &Frame,
        mut args: Vec<Value>,
        has_kw: bool,
        strict: bool,
    ) -> R<()> {
        let env = &frame.env;
        let wants_kw = !params.keywords.is_empty() || params.keyword_rest.is_some();
        let kw = if wants_kw && (has_kw || matches!(args.last(), Some(Value::Hash(_)))) {
            match args.pop() {
                Some(Value::Hash(h)) => Some(h),
                _ => None,
            }
        } else {
            None
        };
        let positional = params.positional_count();
        if !strict
            && args.len() == 1
            && (positional > 1 || params.rest.is_some() && positional > 0)
            && let Some(Value::Array(a)) = args.first().cloned()
        {
            args = a.borrow().clone();
        }
        let required = params.required.len() + params.post.len() + usize::from(params.numbered);
        if strict {
            let max = (params.rest.is_none()).then_some(positional);
            if args.len() < required || max.is_some_and(|m| args.len() > m) {
                return self.raise(
                    "ArgumentError",
                    format!(
                        "wrong number of arguments (given {}, expected {}{})",
                        args.len(),
                        required,
                        if max == Some(required) {
                            String::new()
                        } else {
                            "+".into()
                        }
                    ),
                );
            }
        }
        let mut it = args.into_iter();
        for i in 0..params.numbered {
            env.define(&format!("_{}", i + 1), it.next().unwrap_or(Value::Nil));
        }
        for p in &params.required {
            self.bind_param(p, it.next().unwrap_or(Value::Nil), env);
        }
        let rest: Vec<Value> = it.collect();
        let after_opt = rest.len().saturating_sub(params.post.len());
        let mut rest_it = rest.into_iter();
        let mut used = 0;
        for (name, default) in &params.optional {
            if used < after_opt {
                env.define(name, rest_it.next().unwrap_or(Value::Nil));
                used += 1;
            } else {
                let v = self.eval(default, frame)?;
                env.define(name, v);
            }
        }
        let leftover: Vec<Value> = rest_it.collect();
        let split = leftover.len().saturating_sub(params.post.len());
        if let Some(r) = &params.rest {
            env.define(r, Value::array(leftover[..split].to_vec()));
        }
        for (p, v) in params.post.iter().zip(leftover[split..].iter()) {
            self.bind_param(p, v.clone(), env);
        }
        self.bind_keywords(params, kw, frame)
    }

    fn bind_keywords(
        &self,
        params: &Params,
        kw: Option<crate::inspec::value::Shared<RHash>>,
        frame: &Frame,
    ) -> R<()> {
        let given = kw.map(|h| h.borrow().clone()).unwrap_or_default();
        let mut rest = given.clone();
        for (name, default) in &params.keywords {
            let key = Value::sym(name);
            rest.remove(&key);
            match (given.get(&key), default) {
                (Some(v), _) => frame.env.define(name, v.clone()),
                (None, Some(d)) => {
                    let v = self.eval(d, frame)?;
                    frame.env.define(name, v);
                }
                (None, None) => {
                    return self.raise("ArgumentError", format!("missing keyword: :{name}"));
                }
            }
        }
        if let Some(r) = &params.keyword_rest {
            frame.env.define(r, Value::hash(rest));
        }
        Ok(())
    }

    fn bind_param(&self, p: &Param, v: Value, env: &Rc<Scope>) {
        match p {
            Param::Name(n) => env.define(n, v),
            Param::Destructure(parts) => {
                let items = match &v {
                    Value::Array(a) => a.borrow().clone(),
                    Value::Unknown => vec![Value::Unknown; parts.len()],
                    other => vec![other.clone()],
                };
                for (i, p) in parts.iter().enumerate() {
                    self.bind_param(p, items.get(i).cloned().unwrap_or(Value::Nil), env);
                }
            }
        }
    }

    /// `super` inside a profile class's method.
    pub(super) fn call_super(
        &self,
        args: Option<&Vec<crate::inspec::ast::Arg>>,
        _loc: Loc,
        f: &Frame,
    ) -> R<Value> {
        let (Some(cls), Some((name, orig))) = (&f.def_class, &f.method) else {
            return self.unsupported("`super` outside a method");
        };
        let mut a = match args {
            Some(a) => self.eval_args(a, f)?,
            None => Args::new(orig.clone()),
        };
        a.block = a.block.or_else(|| f.block.clone());
        match cls.superclass.as_ref().and_then(|s| s.find_method(name)) {
            Some((m, owner)) => self.call_user_method(f.self_val.clone(), &m, Some(owner), a),
            // `super` to Inspec.resource(1) or Object: nothing to do.
            None => Ok(Value::Nil),
        }
    }
}

/// The proc inside a value made by `make_proc`.
fn proc_of(v: Value) -> Option<Rc<Proc>> {
    match v {
        Value::Proc(p) => Some(p),
        _ => None,
    }
}

/// The class of a value.
pub fn class_of(v: &Value) -> ClassRef {
    match v {
        Value::Object(o) => ClassRef::User(o.class.clone()),
        Value::Exception(e) => {
            ClassRef::Builtin(super::kernel::builtin_name(&e.class).unwrap_or("StandardError"))
        }
        other => ClassRef::Builtin(builtin_ancestors(other)[0]),
    }
}

/// Built-in class names a value is an instance of, most specific first.
pub fn builtin_ancestors(v: &Value) -> &'static [&'static str] {
    match v {
        Value::Nil => &["NilClass", "Object"],
        Value::Bool(true) => &["TrueClass", "Object"],
        Value::Bool(false) => &["FalseClass", "Object"],
        Value::Int(_) => &["Integer", "Numeric", "Comparable", "Object"],
        Value::Float(_) => &["Float", "Numeric", "Comparable", "Object"],
        Value::Str(_) => &["String", "Comparable", "Object"],
        Value::Sym(_) => &["Symbol", "Comparable", "Object"],
        Value::Array(_) => &["Array", "Enumerable", "Object"],
        Value::Hash(_) => &["Hash", "Enumerable", "Object"],
        Value::Set(_) => &["Set", "Enumerable", "Object"],
        Value::Range(_) => &["Range", "Enumerable", "Object"],
        Value::Regex(_) => &["Regexp", "Object"],
        Value::Match(_) => &["MatchData", "Object"],
        Value::Proc(_) => &["Proc", "Object"],
        Value::Date(_) => &["Date", "Comparable", "Object"],
        Value::Version(_) => &["Gem::Version", "Comparable", "Object"],
        Value::Exception(_) => &["StandardError", "Exception", "Object"],
        Value::Class(_) => &["Class", "Module", "Object"],
        _ => &["Object"],
    }
}
