//! Evaluation of each node kind.

use std::rc::Rc;

use super::{Flow, Frame, Interp, R, Scope};
use crate::inspec::ast::{Arg, BeginBlock, Kind, Node, Part, RegexFlags, Target};
use crate::inspec::ruby_regex::RubyRegex;
use crate::inspec::support::RubyException;
use crate::inspec::value::{ClassRef, RHash, Value};

impl Interp<'_> {
    /// Evaluates a node (growing the stack on demand: depth is bounded by the budget).
    ///
    /// # Errors
    /// Control flow, Ruby exceptions and fatal errors.
    pub fn eval(&self, n: &Node, f: &Frame) -> R<Value> {
        stacker::maybe_grow(128 * 1024, 4 << 20, || self.eval_node(n, f))
    }

    /// Evaluates an optional node (absent is nil).
    ///
    /// # Errors
    /// As [`Interp::eval`].
    pub fn eval_opt(&self, n: Option<&Node>, f: &Frame) -> R<Value> {
        match n {
            Some(n) => self.eval(n, f),
            None => Ok(Value::Nil),
        }
    }

    fn eval_node(&self, n: &Node, f: &Frame) -> R<Value> {
        self.at.set(n.loc);
        self.tick(1)?;
        match &n.kind {
            Kind::Nil => Ok(Value::Nil),
            Kind::True => Ok(Value::Bool(true)),
            Kind::False => Ok(Value::Bool(false)),
            Kind::SelfRef => Ok(f.self_val.clone()),
            Kind::Int(i) => Ok(Value::Int(*i)),
            Kind::Float(x) => Ok(Value::Float(*x)),
            Kind::Str(s) => Ok(Value::str(s)),
            Kind::Sym(s) => Ok(Value::sym(s)),
            Kind::Interp(parts) => match self.interpolate(parts, f)? {
                Some(s) => self.new_str(s),
                None => Ok(Value::Unknown),
            },
            Kind::DSym(parts) => Ok(self
                .interpolate(parts, f)?
                .map_or(Value::Unknown, Value::sym)),
            Kind::Regex(parts, flags) => self.regex_literal(parts, *flags, f),
            Kind::Array(items) => self.array_literal(items, f),
            Kind::Hash(pairs) => self.hash_literal(pairs, f),
            Kind::Splat(inner) => self.eval(inner, f),
            Kind::Range(lo, hi, excl) => {
                let lo = self.eval_opt(lo.as_deref(), f)?;
                let hi = self.eval_opt(hi.as_deref(), f)?;
                if lo.is_unknown() || hi.is_unknown() {
                    return Ok(Value::Unknown);
                }
                Ok(Value::Range(Rc::new((lo, hi, *excl))))
            }
            Kind::Local(name) => Ok(f.env.get(name).unwrap_or(Value::Nil)),
            Kind::SetLocal(name, v) => {
                let v = self.eval(v, f)?;
                f.env.set(name, v.clone());
                Ok(v)
            }
            Kind::Ivar(name) => Ok(self.ivar_get(&f.self_val, name)),
            Kind::SetIvar(name, v) => {
                let v = self.eval(v, f)?;
                self.ivar_set(&f.self_val, name, v.clone());
                Ok(v)
            }
            Kind::Const(path) => self.constant(path, f),
            Kind::SetConst(name, v) => {
                let v = self.eval(v, f)?;
                self.set_constant(name, v.clone(), f);
                Ok(v)
            }
            Kind::MultiAssign(names, v) => self.multi_assign(names, v, f),
            Kind::OpAssign(target, op, v) => self.op_assign(target, op, v, f),
            Kind::Call(c) => self.eval_call(c, n.loc, f),
            Kind::And(a, b) => self.and_or(a, b, true, f),
            Kind::Or(a, b) => self.and_or(a, b, false, f),
            Kind::Not(a) => {
                let v = self.eval(a, f)?;
                self.call_method(&v, "!", super::Args::none(), n.loc)
            }
            Kind::Defined(inner) => self.defined(inner, f),
            Kind::If(c, t, e) => self.if_(c, t.as_deref(), e.as_deref(), f),
            Kind::Case(subject, whens, default) => {
                self.case(subject.as_deref(), whens, default.as_deref(), f)
            }
            Kind::While(c, body, until) => self.while_loop(c, body.as_deref(), *until, f),
            Kind::For(names, list, body) => self.for_loop(names, list, body.as_deref(), f),
            Kind::Begin(b) => self.begin(b, f),
            Kind::Seq(items) => {
                let mut last = Value::Nil;
                for item in items {
                    last = self.eval(item, f)?;
                }
                Ok(last)
            }
            Kind::Def(def) => {
                self.define_method(def, f);
                Ok(Value::sym(&def.name))
            }
            Kind::Class(name, sup, body) => {
                let sup = self.eval_opt(sup.as_deref(), f)?;
                self.define_class(name, sup, body.as_deref(), false, f)
            }
            Kind::Module(name, body) => {
                self.define_class(name, Value::Nil, body.as_deref(), true, f)
            }
            Kind::Return(v) => Err(Flow::Return(self.eval_opt(v.as_deref(), f)?)),
            Kind::Next(v) => Err(Flow::Next(self.eval_opt(v.as_deref(), f)?)),
            Kind::Break(v) => Err(Flow::Break(self.eval_opt(v.as_deref(), f)?)),
            Kind::Yield(args) => self.yield_(args, f),
            Kind::Super(args) => self.call_super(args.as_ref(), n.loc, f),
            Kind::Lambda(b) => Ok(self.make_proc(b, f, true)),
            Kind::MatchWrite(call, names) => self.match_write(call, names, f),
            Kind::NthRef(i) => Ok(self
                .last_match
                .borrow()
                .as_ref()
                .map_or(Value::Nil, |m| m.group_value(*i as usize))),
            Kind::Unsupported(what) => self.unsupported(what),
        }
    }

    /// `&&` / `||`: an unknown left side evaluates the right for planning.
    fn and_or(&self, a: &Node, b: &Node, and: bool, f: &Frame) -> R<Value> {
        let l = self.eval(a, f)?;
        if l.is_unknown() {
            self.eval(b, f)?;
            return Ok(Value::Unknown);
        }
        if l.truthy() == and {
            self.eval(b, f)
        } else {
            Ok(l)
        }
    }

    /// `if`: an unknown condition runs both branches (planning covers both).
    fn if_(&self, c: &Node, t: Option<&Node>, e: Option<&Node>, f: &Frame) -> R<Value> {
        let cond = self.eval(c, f)?;
        if cond.is_unknown() {
            self.eval_opt(t, f)?;
            self.eval_opt(e, f)?;
            return Ok(Value::Unknown);
        }
        if cond.truthy() {
            self.eval_opt(t, f)
        } else {
            self.eval_opt(e, f)
        }
    }

    fn yield_(&self, args: &[Arg], f: &Frame) -> R<Value> {
        let Some(block) = f.block.clone() else {
            return self.raise("LocalJumpError", "no block given (yield)");
        };
        let args = self.eval_args(args, f)?;
        self.call_proc(&block, args.pos, None)
    }

    /// `/(?<name>...)/ =~ text` also sets a local per named group.
    fn match_write(&self, call: &Node, names: &[String], f: &Frame) -> R<Value> {
        let r = self.eval(call, f)?;
        let m = self.last_match.borrow().clone();
        for name in names {
            let v = m
                .as_ref()
                .and_then(|m| m.named(name))
                .map_or(Value::Nil, Value::str);
            f.env.set(name, v);
        }
        Ok(r)
    }

    /// The text of an interpolation; `None` when a part is unknown.
    fn interpolate(&self, parts: &[Part], f: &Frame) -> R<Option<String>> {
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Code(n) => {
                    let v = self.eval(n, f)?;
                    if v.is_unknown() {
                        return Ok(None);
                    }
                    out.push_str(&self.to_s_value(&v)?);
                }
            }
            self.alloc(0)?;
        }
        Ok(Some(out))
    }

    fn regex_literal(&self, parts: &[Part], flags: RegexFlags, f: &Frame) -> R<Value> {
        let mut src = String::new();
        for p in parts {
            match p {
                Part::Lit(s) => src.push_str(s),
                Part::Code(n) => match self.eval(n, f)? {
                    Value::Unknown => return Ok(Value::Unknown),
                    Value::Regex(r) => src.push_str(&r.to_s()),
                    v => src.push_str(&self.to_s_value(&v)?),
                },
            }
        }
        self.alloc(src.len())?;
        match RubyRegex::new(&src, flags) {
            Ok(r) => Ok(Value::Regex(Rc::new(r))),
            Err(e) => self.unsupported(e),
        }
    }

    fn array_literal(&self, items: &[Node], f: &Frame) -> R<Value> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Kind::Splat(inner) = &item.kind {
                let v = self.eval(inner, f)?;
                if v.is_unknown() {
                    return Ok(Value::Unknown);
                }
                out.extend(self.to_list(&v)?);
            } else {
                out.push(self.eval(item, f)?);
            }
        }
        self.new_array(out)
    }

    fn hash_literal(&self, pairs: &[(Option<Node>, Node)], f: &Frame) -> R<Value> {
        let mut h = RHash::new();
        for (k, v) in pairs {
            match k {
                Some(k) => {
                    let k = self.eval(k, f)?;
                    let v = self.eval(v, f)?;
                    h.insert(k, v);
                }
                None => match self.eval(v, f)? {
                    Value::Hash(other) => {
                        for (k, v) in other.borrow().entries() {
                            h.insert(k.clone(), v.clone());
                        }
                    }
                    Value::Nil => {}
                    Value::Unknown => return Ok(Value::Unknown),
                    other => {
                        return self.raise(
                            "TypeError",
                            format!("no implicit conversion of {} into Hash", other.class_name()),
                        );
                    }
                },
            }
        }
        self.alloc(h.len() * 32)?;
        Ok(Value::hash(h))
    }

    fn multi_assign(&self, names: &[String], v: &Node, f: &Frame) -> R<Value> {
        let value = self.eval(v, f)?;
        let items = match &value {
            Value::Array(a) => a.borrow().clone(),
            Value::Unknown => vec![Value::Unknown; names.len()],
            other => vec![other.clone()],
        };
        let mut i = 0;
        for name in names {
            if let Some(rest) = name.strip_prefix('*') {
                let take = items.len().saturating_sub(names.len() - 1);
                let slice = items.iter().skip(i).take(take).cloned().collect();
                f.env.set(rest, Value::array(slice));
                i += take;
            } else {
                f.env.set(name, items.get(i).cloned().unwrap_or(Value::Nil));
                i += 1;
            }
        }
        Ok(value)
    }

    fn op_assign(&self, target: &Target, op: &str, v: &Node, f: &Frame) -> R<Value> {
        let loc = self.at.get();
        let (recv, index) = match target {
            Target::Index(r, a) => (Some(self.eval(r, f)?), Some(self.eval_args(a, f)?)),
            Target::Attr(r, _) => (Some(self.eval(r, f)?), None),
            _ => (None, None),
        };
        let current = match target {
            Target::Local(n) => f.env.get(n).unwrap_or(Value::Nil),
            Target::Ivar(n) => self.ivar_get(&f.self_val, n),
            Target::Const(n) => self.consts.borrow().get(n).cloned().unwrap_or(Value::Nil),
            Target::Index(..) => {
                let (r, a) = (recv.as_ref(), index.clone());
                self.call_method(r.unwrap_or(&Value::Nil), "[]", a.unwrap_or_default(), loc)?
            }
            Target::Attr(_, name) => self.call_method(
                recv.as_ref().unwrap_or(&Value::Nil),
                name,
                super::Args::none(),
                loc,
            )?,
        };
        let new = match op {
            "||" if current.truthy() && !current.is_unknown() => return Ok(current),
            "&&" if !current.truthy() => return Ok(current),
            "||" | "&&" => self.eval(v, f)?,
            _ => {
                let rhs = self.eval(v, f)?;
                self.call_method(&current, op, super::Args::one(rhs), loc)?
            }
        };
        match target {
            Target::Local(n) => f.env.set(n, new.clone()),
            Target::Ivar(n) => self.ivar_set(&f.self_val, n, new.clone()),
            Target::Const(n) => {
                self.consts.borrow_mut().insert(n.clone(), new.clone());
            }
            Target::Index(..) => {
                let mut a = index.unwrap_or_default();
                a.pos.push(new.clone());
                self.call_method(recv.as_ref().unwrap_or(&Value::Nil), "[]=", a, loc)?;
            }
            Target::Attr(_, name) => {
                self.call_method(
                    recv.as_ref().unwrap_or(&Value::Nil),
                    &format!("{name}="),
                    super::Args::one(new.clone()),
                    loc,
                )?;
            }
        }
        Ok(new)
    }

    fn defined(&self, inner: &Node, f: &Frame) -> R<Value> {
        Ok(match &inner.kind {
            Kind::Local(n) if f.env.get(n).is_some() => Value::str("local-variable"),
            Kind::Ivar(n) if !self.ivar_get(&f.self_val, n).is_nil() => {
                Value::str("instance-variable")
            }
            Kind::Const(p) => match self.constant(p, f) {
                Ok(_) => Value::str("constant"),
                Err(Flow::Fatal(e)) => return Err(Flow::Fatal(e)),
                Err(_) => Value::Nil,
            },
            Kind::Local(_) | Kind::Ivar(_) => Value::Nil,
            Kind::Call(c) if c.recv.is_none() => {
                let known = self.methods.borrow().contains_key(&c.name)
                    || crate::inspec::resources::ResKind::by_name(&c.name).is_some()
                    || f.env.get(&c.name).is_some();
                if known {
                    Value::str("method")
                } else {
                    Value::Nil
                }
            }
            _ => Value::str("expression"),
        })
    }

    fn case(
        &self,
        subject: Option<&Node>,
        whens: &[(Vec<Node>, Option<Node>)],
        default: Option<&Node>,
        f: &Frame,
    ) -> R<Value> {
        let subject = match subject {
            Some(s) => Some(self.eval(s, f)?),
            None => None,
        };
        let unknown = subject.as_ref().is_some_and(Value::is_unknown);
        for (conds, body) in whens {
            let mut hit = false;
            let mut unsure = unknown;
            for c in conds {
                let pattern = self.eval(c, f)?;
                let m = match &subject {
                    Some(s) => self.case_eq(&pattern, s)?,
                    None => (!pattern.is_unknown()).then(|| pattern.truthy()),
                };
                match m {
                    Some(true) => {
                        hit = true;
                        break;
                    }
                    Some(false) => {}
                    None => unsure = true,
                }
            }
            if unsure {
                self.eval_opt(body.as_ref(), f)?;
            } else if hit {
                return self.eval_opt(body.as_ref(), f);
            }
        }
        if unknown {
            self.eval_opt(default, f)?;
            return Ok(Value::Unknown);
        }
        self.eval_opt(default, f)
    }

    fn while_loop(&self, c: &Node, body: Option<&Node>, until: bool, f: &Frame) -> R<Value> {
        loop {
            let cond = self.eval(c, f)?;
            if cond.is_unknown() {
                self.eval_opt(body, f)?;
                return Ok(Value::Nil);
            }
            if cond.truthy() == until {
                return Ok(Value::Nil);
            }
            match self.eval_opt(body, f) {
                Ok(_) | Err(Flow::Next(_)) => {}
                Err(Flow::Break(v)) => return Ok(v),
                Err(e) => return Err(e),
            }
        }
    }

    fn for_loop(&self, names: &[String], list: &Node, body: Option<&Node>, f: &Frame) -> R<Value> {
        let l = self.eval(list, f)?;
        if l.is_unknown() {
            for n in names {
                f.env.set(n, Value::Unknown);
            }
            self.eval_opt(body, f)?;
            return Ok(Value::Unknown);
        }
        for item in self.to_list(&l)? {
            self.tick(1)?;
            if names.len() == 1 {
                f.env.set(&names[0], item);
            } else {
                let parts = match &item {
                    Value::Array(a) => a.borrow().clone(),
                    other => vec![other.clone()],
                };
                for (i, n) in names.iter().enumerate() {
                    f.env.set(n, parts.get(i).cloned().unwrap_or(Value::Nil));
                }
            }
            match self.eval_opt(body, f) {
                Ok(_) | Err(Flow::Next(_)) => {}
                Err(Flow::Break(v)) => return Ok(v),
                Err(e) => return Err(e),
            }
        }
        Ok(l)
    }

    fn begin(&self, b: &BeginBlock, f: &Frame) -> R<Value> {
        let result = match self.eval_opt(b.body.as_ref(), f) {
            Err(Flow::Raise(exc, loc)) => self.rescue(b, exc, loc, f),
            Ok(v) => match &b.else_body {
                Some(e) => self.eval(e, f),
                None => Ok(v),
            },
            other => other,
        };
        if let Some(ensure) = &b.ensure {
            self.eval(ensure, f)?;
        }
        result
    }

    fn rescue(
        &self,
        b: &BeginBlock,
        exc: Rc<RubyException>,
        loc: crate::inspec::ast::Loc,
        f: &Frame,
    ) -> R<Value> {
        for r in &b.rescues {
            let mut caught = r.classes.is_empty();
            for c in &r.classes {
                let name = match self.eval(c, f)? {
                    Value::Class(ClassRef::Builtin(n)) => n.to_string(),
                    Value::Class(ClassRef::User(c)) => c.name.clone(),
                    other => other.to_s(),
                };
                if exc.is_a(&name) {
                    caught = true;
                }
            }
            if caught {
                if let Some(var) = &r.var {
                    f.env.set(var, Value::Exception(exc.clone()));
                }
                return self.eval_opt(r.body.as_deref(), f);
            }
        }
        Err(Flow::Raise(exc, loc))
    }

    /// Evaluates call-site arguments (pairs become a trailing hash).
    ///
    /// # Errors
    /// As [`Interp::eval`].
    pub fn eval_args(&self, args: &[Arg], f: &Frame) -> R<super::Args> {
        let mut out = super::Args::none();
        let mut kw: Option<RHash> = None;
        for a in args {
            match a {
                Arg::Pos(n) => out.pos.push(self.eval(n, f)?),
                Arg::Splat(n) => {
                    let v = self.eval(n, f)?;
                    if v.is_unknown() {
                        out.pos.push(Value::Unknown);
                    } else {
                        out.pos.extend(self.to_list(&v)?);
                    }
                }
                Arg::Pair(k, v) => {
                    let k = self.eval(k, f)?;
                    let v = self.eval(v, f)?;
                    kw.get_or_insert_with(RHash::new).insert(k, v);
                }
                Arg::DoubleSplat(n) => {
                    if let Value::Hash(h) = self.eval(n, f)? {
                        let h = h.borrow();
                        let kw = kw.get_or_insert_with(RHash::new);
                        for (k, v) in h.entries() {
                            kw.insert(k.clone(), v.clone());
                        }
                    }
                }
                Arg::Block(n) => {
                    let v = self.eval(n, f)?;
                    out.block = match v {
                        Value::Proc(p) => Some(p),
                        Value::Sym(s) => Some(Rc::new(super::Proc {
                            body: super::ProcBody::Symbol(s.to_string()),
                            lambda: false,
                        })),
                        Value::Nil => None,
                        other => {
                            return self.raise(
                                "TypeError",
                                format!(
                                    "wrong argument type {} (expected Proc)",
                                    other.class_name()
                                ),
                            );
                        }
                    };
                }
            }
        }
        if let Some(kw) = kw {
            out.pos.push(Value::hash(kw));
            out.has_kw = true;
        }
        Ok(out)
    }

    /// A proc for a literal block in frame `f`.
    pub fn make_proc(
        &self,
        b: &std::sync::Arc<crate::inspec::ast::Block>,
        f: &Frame,
        lambda: bool,
    ) -> Value {
        Value::Proc(Rc::new(super::Proc {
            body: super::ProcBody::Block {
                block: b.clone(),
                env: f.env.clone(),
                self_val: f.self_val.clone(),
                def_class: f.def_class.clone(),
            },
            lambda,
        }))
    }

    /// A fresh frame for a class body.
    pub fn class_frame(cls: &Rc<crate::inspec::library::ClassDef>) -> Frame {
        Frame {
            self_val: Value::Class(ClassRef::User(cls.clone())),
            env: Scope::new(None),
            block: None,
            def_class: Some(cls.clone()),
            method: None,
        }
    }
}
