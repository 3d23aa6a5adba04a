//! The profile interpreter: evaluates the Ruby subset of `ast.rs` over
//! gathered facts, with no file, network or process access of its own.
//!
//! Layout: this module holds the interpreter state ([`Interp`]), scopes,
//! procs and control flow; `eval.rs` evaluates nodes, `call.rs` dispatches
//! method calls and binds arguments, `kernel.rs` answers receiver-less
//! builtins and constants (and refuses `File`, `IO`, `system` and friends).
//!
//! **Unknown values.** A resource whose fact was not gathered answers
//! [`Value::Unknown`] and records the fact as missed. Unknown spreads
//! through every operation; a condition on it runs both branches, a loop
//! over it runs its body once. That is what lets one pass with no facts
//! plan every resource call whose arguments are known, across all
//! branches, and lets an evaluation after the first round trip name every
//! fact the second round trip must fetch.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use super::ast::{Block, Loc, MethodDef};
use super::budget::{Budget, Exhausted, Limits};
use super::dsl::Dsl;
use super::library::ClassDef;
use super::program::{Program, ScanInputs};
use super::support::{MatchData, RubyException};
use super::value::Value;
use crate::facts::{FactRequest, FactValue, Facts};

mod call;
mod eval;
mod kernel;

pub use call::Args;

/// Local variables of one scope; blocks chain to their defining scope.
#[derive(Debug, Default)]
pub struct Scope {
    vars: RefCell<Vec<(String, Value)>>,
    parent: Option<Env>,
}

/// A shared scope.
pub type Env = Rc<Scope>;

impl Scope {
    /// A scope (a method body has no parent; a block's parent is where it was written).
    pub fn new(parent: Option<Env>) -> Env {
        Rc::new(Self {
            vars: RefCell::new(Vec::new()),
            parent,
        })
    }

    /// Reads a local.
    pub fn get(&self, name: &str) -> Option<Value> {
        if let Some((_, v)) = self.vars.borrow().iter().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        self.parent.as_ref().and_then(|p| p.get(name))
    }

    fn assign_existing(&self, name: &str, v: &Value) -> bool {
        if let Some(slot) = self.vars.borrow_mut().iter_mut().find(|(n, _)| n == name) {
            slot.1 = v.clone();
            return true;
        }
        self.parent
            .as_ref()
            .is_some_and(|p| p.assign_existing(name, v))
    }

    /// Assigns a local: an existing one in any enclosing scope, else a new one here.
    pub fn set(&self, name: &str, v: Value) {
        if !self.assign_existing(name, &v) {
            self.vars.borrow_mut().push((name.to_string(), v));
        }
    }

    /// Defines a local in this scope only (parameters shadow outer names).
    pub fn define(&self, name: &str, v: Value) {
        let mut vars = self.vars.borrow_mut();
        match vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = v,
            None => vars.push((name.to_string(), v)),
        }
    }
}

/// What a proc runs.
#[derive(Debug)]
pub enum ProcBody {
    /// A literal block with the scope and self it was written in.
    Block {
        /// The block.
        block: Arc<Block>,
        /// Its defining scope.
        env: Env,
        /// `self` where it was written.
        self_val: Value,
        /// The class whose method wrote it (for `super` and constants).
        def_class: Option<Rc<ClassDef>>,
    },
    /// `&:name`
    Symbol(String),
}

/// A block, proc or lambda.
#[derive(Debug)]
pub struct Proc {
    /// What it runs.
    pub body: ProcBody,
    /// Lambdas check arity and catch `return`.
    pub lambda: bool,
}

/// Where code runs: self, locals, the block passed in, the defining class.
#[derive(Debug, Clone)]
pub struct Frame {
    /// `self`
    pub self_val: Value,
    /// Locals.
    pub env: Env,
    /// The block the current method received (`yield`).
    pub block: Option<Rc<Proc>>,
    /// The class whose body or method is running.
    pub def_class: Option<Rc<ClassDef>>,
    /// The running method and its arguments (for implicit `super`).
    pub method: Option<(String, Vec<Value>)>,
}

impl Frame {
    /// The top level of a file.
    pub fn top() -> Self {
        Self {
            self_val: Value::Nil,
            env: Scope::new(None),
            block: None,
            def_class: None,
            method: None,
        }
    }
}

/// An error no `rescue` may catch: the control gets an error result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    /// What went wrong (names the construct).
    pub message: String,
    /// Where.
    pub loc: Loc,
}

/// Non-local control flow and errors.
#[derive(Debug, Clone)]
pub enum Flow {
    /// `next` out of a block.
    Next(Value),
    /// `break` out of a loop or iterator.
    Break(Value),
    /// `return` from a method or lambda.
    Return(Value),
    /// A Ruby exception (rescuable).
    Raise(Rc<RubyException>, Loc),
    /// Unsupported construct or exhausted budget (not rescuable).
    Fatal(Fatal),
}

/// Evaluation result.
pub type R<T> = Result<T, Flow>;

/// A resource call whose arguments came from facts not yet gathered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DynamicCall {
    /// `file(...)` and so on.
    pub call: String,
    /// Where.
    pub loc: Loc,
}

/// A fact request in words (`stat of /etc/passwd`).
pub fn describe_request(req: &FactRequest) -> String {
    match req {
        FactRequest::Stat(p) | FactRequest::StatFollow(p) => format!("stat of {p}"),
        FactRequest::Read(p) => format!("read of {p}"),
        FactRequest::Walk(p) => format!("listing of {p}"),
        FactRequest::Processes => "the process list".into(),
        FactRequest::Command(c) => format!("command `{c}`"),
    }
}

/// The interpreter for one control evaluation (or one planning pass).
pub struct Interp<'a> {
    /// The profile's code.
    pub program: &'a Program,
    /// Gathered facts (empty while planning).
    pub facts: &'a Facts,
    /// Input values for this scan.
    pub inputs: &'a ScanInputs,
    /// Steps, depth, memory and time.
    pub budget: Budget,
    /// Profile-defined classes and modules by name.
    pub classes: RefCell<HashMap<String, Rc<ClassDef>>>,
    /// Top-level constants.
    pub consts: RefCell<HashMap<String, Value>>,
    /// Top-level `def`s.
    pub methods: RefCell<HashMap<String, Arc<MethodDef>>>,
    /// Facts asked for but not gathered.
    pub misses: RefCell<BTreeSet<FactRequest>>,
    /// Resource calls whose arguments were not known.
    pub dynamic: RefCell<BTreeSet<DynamicCall>>,
    /// Where each missed fact was first asked for.
    pub miss_sites: RefCell<BTreeSet<DynamicCall>>,
    /// The DSL state (controls, describes, results).
    pub dsl: RefCell<Dsl>,
    /// `$~` of the last match.
    pub last_match: RefCell<Option<Rc<MatchData>>>,
    /// Location of the node being evaluated (for errors raised deep in core methods).
    pub at: Cell<Loc>,
}

impl<'a> Interp<'a> {
    /// A fresh interpreter.
    pub fn new(
        program: &'a Program,
        facts: &'a Facts,
        inputs: &'a ScanInputs,
        limits: Limits,
        dsl: Dsl,
    ) -> Self {
        Self {
            program,
            facts,
            inputs,
            budget: Budget::new(limits),
            classes: RefCell::new(HashMap::new()),
            consts: RefCell::new(HashMap::new()),
            methods: RefCell::new(HashMap::new()),
            misses: RefCell::new(BTreeSet::new()),
            dynamic: RefCell::new(BTreeSet::new()),
            miss_sites: RefCell::new(BTreeSet::new()),
            dsl: RefCell::new(dsl),
            last_match: RefCell::new(None),
            at: Cell::new(Loc::default()),
        }
    }

    /// A gathered fact, or `None` after recording it as missed (with the
    /// call that asked, for the error a third round trip would get).
    pub fn fact(&self, req: &FactRequest) -> Option<&'a FactValue> {
        let got = self.facts.values.get(req);
        if got.is_none() && self.misses.borrow_mut().insert(req.clone()) {
            self.miss_sites.borrow_mut().insert(DynamicCall {
                call: describe_request(req),
                loc: self.at.get(),
            });
        }
        got
    }

    /// Records a resource call whose arguments depend on missing facts.
    pub fn dynamic_call(&self, call: String) {
        let loc = self.at.get();
        self.dynamic.borrow_mut().insert(DynamicCall { call, loc });
    }

    /// `file:line` of a location.
    pub fn where_(&self, loc: Loc) -> String {
        let file = self
            .program
            .files
            .get(loc.file as usize)
            .map_or("?", |f| f.path.as_str());
        format!("{file}:{}", loc.line)
    }

    /// An unsupported-construct error at the current location.
    pub fn unsupported<T>(&self, what: impl AsRef<str>) -> R<T> {
        let loc = self.at.get();
        Err(Flow::Fatal(Fatal {
            message: format!(
                "unsupported: {} at {} (outside the InSpec language scanfleet runs)",
                what.as_ref(),
                self.where_(loc)
            ),
            loc,
        }))
    }

    /// A refused-access error: profiles reach the target only through resources.
    pub fn refuse<T>(&self, what: impl AsRef<str>) -> R<T> {
        let loc = self.at.get();
        Err(Flow::Fatal(Fatal {
            message: format!(
                "refused: {} at {}: profiles reach the target only through resources, \
                 which are gathered from the target, never from the scanner's host",
                what.as_ref(),
                self.where_(loc)
            ),
            loc,
        }))
    }

    /// Raises a Ruby exception at the current location.
    pub fn raise<T>(&self, class: &str, message: impl Into<String>) -> R<T> {
        Err(Flow::Raise(
            Rc::new(RubyException::new(class, message)),
            self.at.get(),
        ))
    }

    /// Converts a budget error.
    pub fn exhausted(&self, e: Exhausted) -> Flow {
        let loc = self.at.get();
        Flow::Fatal(Fatal {
            message: format!("{e} (at {})", self.where_(loc)),
            loc,
        })
    }

    /// Spends steps.
    ///
    /// # Errors
    /// When the budget ran out.
    pub fn tick(&self, n: u64) -> R<()> {
        self.budget.steps(n).map_err(|e| self.exhausted(e))
    }

    /// Accounts for an allocation of `n` bytes before making it.
    ///
    /// # Errors
    /// When the memory bound would be passed.
    pub fn alloc(&self, n: usize) -> R<()> {
        self.budget.alloc(n as u64).map_err(|e| self.exhausted(e))
    }

    /// A string value, accounted for.
    ///
    /// # Errors
    /// When the memory bound would be passed.
    pub fn new_str(&self, s: String) -> R<Value> {
        self.alloc(s.len())?;
        Ok(Value::str(s))
    }

    /// An array value, accounted for.
    ///
    /// # Errors
    /// When the memory bound would be passed.
    pub fn new_array(&self, items: Vec<Value>) -> R<Value> {
        self.alloc(items.len() * 16)?;
        Ok(Value::array(items))
    }
}
