//! Lowering prism nodes: control flow, definitions and assignments.

use std::sync::Arc;

use ruby_prism::Node as P;

use super::lower::{Lower, const_path, name};
use crate::inspec::ast::{Arg, BeginBlock, Kind, MethodDef, Node, Rescue, Target};

impl Lower {
    pub(super) fn control(&self, n: &P<'_>, d: usize) -> Option<Kind> {
        Some(if let Some(s) = n.as_statements_node() {
            let mut body: Vec<Node> = s.body().iter().map(|x| self.node(&x, d)).collect();
            if body.len() == 1 {
                return body.pop().map(|b| b.kind);
            }
            Kind::Seq(body)
        } else if let Some(p) = n.as_program_node() {
            return self.control(&p.statements().as_node(), d);
        } else if let Some(p) = n.as_parentheses_node() {
            match p.body() {
                Some(b) => return Some(self.node(&b, d).kind),
                None => Kind::Nil,
            }
        } else if let Some(a) = n.as_and_node() {
            Kind::And(self.boxed(&a.left(), d), self.boxed(&a.right(), d))
        } else if let Some(o) = n.as_or_node() {
            Kind::Or(self.boxed(&o.left(), d), self.boxed(&o.right(), d))
        } else if let Some(i) = n.as_if_node() {
            Kind::If(
                self.boxed(&i.predicate(), d),
                self.stmts(i.statements(), d),
                self.opt(i.subsequent(), d),
            )
        } else if let Some(u) = n.as_unless_node() {
            Kind::If(
                self.boxed(&u.predicate(), d),
                u.else_clause().and_then(|e| self.stmts(e.statements(), d)),
                self.stmts(u.statements(), d),
            )
        } else if let Some(e) = n.as_else_node() {
            match self.stmts(e.statements(), d) {
                Some(b) => return Some(b.kind),
                None => Kind::Nil,
            }
        } else if let Some(c) = n.as_case_node() {
            let whens = c
                .conditions()
                .iter()
                .filter_map(|w| w.as_when_node())
                .map(|w| {
                    (
                        w.conditions().iter().map(|x| self.node(&x, d)).collect(),
                        self.stmts(w.statements(), d).map(|b| *b),
                    )
                })
                .collect();
            Kind::Case(
                self.opt(c.predicate(), d),
                whens,
                c.else_clause().and_then(|e| self.stmts(e.statements(), d)),
            )
        } else if let Some(w) = n.as_while_node() {
            if w.is_begin_modifier() {
                Kind::Unsupported("`begin ... end while`".into())
            } else {
                Kind::While(
                    self.boxed(&w.predicate(), d),
                    self.stmts(w.statements(), d),
                    false,
                )
            }
        } else if let Some(w) = n.as_until_node() {
            if w.is_begin_modifier() {
                Kind::Unsupported("`begin ... end until`".into())
            } else {
                Kind::While(
                    self.boxed(&w.predicate(), d),
                    self.stmts(w.statements(), d),
                    true,
                )
            }
        } else if let Some(f) = n.as_for_node() {
            match targets(&f.index()) {
                Some(t) => Kind::For(
                    t,
                    self.boxed(&f.collection(), d),
                    self.stmts(f.statements(), d),
                ),
                None => Kind::Unsupported("a `for` loop over non-local targets".into()),
            }
        } else if let Some(b) = n.as_begin_node() {
            self.begin(&b, d)
        } else if let Some(r) = n.as_rescue_modifier_node() {
            Kind::Begin(Box::new(BeginBlock {
                body: Some(self.node(&r.expression(), d)),
                rescues: vec![Rescue {
                    classes: Vec::new(),
                    var: None,
                    body: Some(self.boxed(&r.rescue_expression(), d)),
                }],
                else_body: None,
                ensure: None,
            }))
        } else if let Some(r) = n.as_return_node() {
            Kind::Return(self.jump_value(r.arguments(), &n.location(), d))
        } else if let Some(r) = n.as_next_node() {
            Kind::Next(self.jump_value(r.arguments(), &n.location(), d))
        } else if let Some(r) = n.as_break_node() {
            Kind::Break(self.jump_value(r.arguments(), &n.location(), d))
        } else if let Some(y) = n.as_yield_node() {
            Kind::Yield(self.args(y.arguments(), d))
        } else if let Some(s) = n.as_super_node() {
            Kind::Super(Some(self.args(s.arguments(), d)))
        } else if n.as_forwarding_super_node().is_some() {
            Kind::Super(None)
        } else if let Some(dn) = n.as_defined_node() {
            Kind::Defined(self.boxed(&dn.value(), d))
        } else {
            return None;
        })
    }

    fn jump_value(
        &self,
        args: Option<ruby_prism::ArgumentsNode<'_>>,
        loc: &ruby_prism::Location<'_>,
        d: usize,
    ) -> Option<Box<Node>> {
        let mut values: Vec<Node> = self
            .args(args, d)
            .into_iter()
            .filter_map(|a| match a {
                Arg::Pos(n) => Some(n),
                _ => None,
            })
            .collect();
        match values.len() {
            0 => None,
            1 => values.pop().map(Box::new),
            _ => Some(Box::new(Node::new(Kind::Array(values), self.loc(loc)))),
        }
    }

    fn begin(&self, b: &ruby_prism::BeginNode<'_>, d: usize) -> Kind {
        let mut rescues = Vec::new();
        let mut clause = b.rescue_clause();
        while let Some(r) = clause {
            rescues.push(Rescue {
                classes: r.exceptions().iter().map(|e| self.node(&e, d)).collect(),
                var: r
                    .reference()
                    .and_then(|v| v.as_local_variable_target_node())
                    .map(|v| name(&v.name())),
                body: self.stmts(r.statements(), d),
            });
            clause = r.subsequent();
        }
        Kind::Begin(Box::new(BeginBlock {
            body: self.stmts(b.statements(), d).map(|x| *x),
            rescues,
            else_body: b
                .else_clause()
                .and_then(|e| self.stmts(e.statements(), d))
                .map(|x| *x),
            ensure: b
                .ensure_clause()
                .and_then(|e| self.stmts(e.statements(), d))
                .map(|x| *x),
        }))
    }

    pub(super) fn definition(&self, n: &P<'_>, d: usize) -> Option<Kind> {
        Some(if let Some(def) = n.as_def_node() {
            let singleton = match def.receiver() {
                None => false,
                Some(r) if r.as_self_node().is_some() => true,
                Some(_) => return Some(Kind::Unsupported("`def` on another object".into())),
            };
            Kind::Def(Arc::new(MethodDef {
                name: name(&def.name()),
                params: def
                    .parameters()
                    .map(|p| self.params(&p, d))
                    .unwrap_or_default(),
                body: def.body().map(|b| Arc::new(self.node(&b, d))),
                singleton,
                loc: self.loc(&def.location()),
            }))
        } else if let Some(c) = n.as_class_node() {
            let Some(path) = const_path(&c.constant_path()) else {
                return Some(Kind::Unsupported("a dynamic class name".into()));
            };
            Kind::Class(
                path.join("::"),
                self.opt(c.superclass(), d),
                c.body().map(|b| Arc::new(self.node(&b, d))),
            )
        } else if let Some(m) = n.as_module_node() {
            let Some(path) = const_path(&m.constant_path()) else {
                return Some(Kind::Unsupported("a dynamic module name".into()));
            };
            Kind::Module(
                path.join("::"),
                m.body().map(|b| Arc::new(self.node(&b, d))),
            )
        } else if let Some(s) = n.as_singleton_class_node() {
            if s.expression().as_self_node().is_none() {
                return Some(Kind::Unsupported("`class << obj` on another object".into()));
            }
            // `class << self; def x; end; end` defines class methods.
            let body = s.body().map(|b| self.node(&b, d));
            let mut defs = Vec::new();
            let mut push = |n: Node| match n.kind {
                Kind::Def(m) => {
                    let mut m = (*m).clone();
                    m.singleton = true;
                    defs.push(Node::new(Kind::Def(Arc::new(m)), n.loc));
                }
                other => defs.push(Node::new(other, n.loc)),
            };
            match body {
                Some(Node {
                    kind: Kind::Seq(items),
                    ..
                }) => items.into_iter().for_each(&mut push),
                Some(other) => push(other),
                None => {}
            }
            Kind::Seq(defs)
        } else if let Some(l) = n.as_lambda_node() {
            Kind::Lambda(Arc::new(self.block(
                l.parameters(),
                l.body(),
                &l.location(),
                d,
            )))
        } else {
            return None;
        })
    }

    pub(super) fn assignment(&self, n: &P<'_>, d: usize) -> Option<Kind> {
        let op = |t: Target, o: String, v: &P<'_>| Kind::OpAssign(Box::new(t), o, self.boxed(v, d));
        Some(if let Some(a) = n.as_local_variable_operator_write_node() {
            op(
                Target::Local(name(&a.name())),
                name(&a.binary_operator()),
                &a.value(),
            )
        } else if let Some(a) = n.as_local_variable_or_write_node() {
            op(Target::Local(name(&a.name())), "||".into(), &a.value())
        } else if let Some(a) = n.as_local_variable_and_write_node() {
            op(Target::Local(name(&a.name())), "&&".into(), &a.value())
        } else if let Some(a) = n.as_instance_variable_operator_write_node() {
            op(
                Target::Ivar(name(&a.name())),
                name(&a.binary_operator()),
                &a.value(),
            )
        } else if let Some(a) = n.as_instance_variable_or_write_node() {
            op(Target::Ivar(name(&a.name())), "||".into(), &a.value())
        } else if let Some(a) = n.as_constant_or_write_node() {
            op(Target::Const(name(&a.name())), "||".into(), &a.value())
        } else if let Some(a) = n.as_index_operator_write_node() {
            let Some(r) = a.receiver() else {
                return Some(Kind::Unsupported(
                    "index assignment without receiver".into(),
                ));
            };
            op(
                Target::Index(self.node(&r, d), self.args(a.arguments(), d)),
                name(&a.binary_operator()),
                &a.value(),
            )
        } else if let Some(a) = n.as_index_or_write_node() {
            let Some(r) = a.receiver() else {
                return Some(Kind::Unsupported(
                    "index assignment without receiver".into(),
                ));
            };
            op(
                Target::Index(self.node(&r, d), self.args(a.arguments(), d)),
                "||".into(),
                &a.value(),
            )
        } else if let Some(a) = n.as_call_operator_write_node() {
            let Some(r) = a.receiver() else {
                return Some(Kind::Unsupported(
                    "attribute assignment without receiver".into(),
                ));
            };
            op(
                Target::Attr(self.node(&r, d), name(&a.read_name())),
                name(&a.binary_operator()),
                &a.value(),
            )
        } else if let Some(a) = n.as_call_or_write_node() {
            let Some(r) = a.receiver() else {
                return Some(Kind::Unsupported(
                    "attribute assignment without receiver".into(),
                ));
            };
            op(
                Target::Attr(self.node(&r, d), name(&a.read_name())),
                "||".into(),
                &a.value(),
            )
        } else if let Some(m) = n.as_multi_write_node() {
            let mut names = Vec::new();
            for l in m.lefts().iter() {
                match l.as_local_variable_target_node() {
                    Some(t) => names.push(name(&t.name())),
                    None => {
                        return Some(Kind::Unsupported(
                            "multiple assignment to non-locals".into(),
                        ));
                    }
                }
            }
            if let Some(rest) = m.rest() {
                match rest
                    .as_splat_node()
                    .and_then(|s| s.expression())
                    .and_then(|e| e.as_local_variable_target_node())
                {
                    Some(t) => names.push(format!("*{}", name(&t.name()))),
                    None if rest.as_implicit_rest_node().is_some() => {}
                    None => return Some(Kind::Unsupported("a complex splat target".into())),
                }
            }
            if m.rights().iter().next().is_some() {
                return Some(Kind::Unsupported("targets after a splat".into()));
            }
            Kind::MultiAssign(names, self.boxed(&m.value(), d))
        } else if let Some(m) = n.as_match_write_node() {
            let call = self.call(&m.call(), d);
            let loc = self.loc(&m.call().location());
            let names = m
                .targets()
                .iter()
                .filter_map(|t| t.as_local_variable_target_node())
                .map(|t| name(&t.name()))
                .collect();
            Kind::MatchWrite(Box::new(Node::new(call, loc)), names)
        } else {
            return None;
        })
    }
}

/// Local names a `for` binds.
fn targets(n: &P<'_>) -> Option<Vec<String>> {
    if let Some(t) = n.as_local_variable_target_node() {
        return Some(vec![name(&t.name())]);
    }
    let m = n.as_multi_target_node()?;
    m.lefts()
        .iter()
        .map(|l| l.as_local_variable_target_node().map(|t| name(&t.name())))
        .collect()
}
