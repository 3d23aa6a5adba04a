//! Profile-defined classes and modules: custom resources from `libraries/`
//! (`class X < Inspec.resource(1)` with `name`, `supports`, `desc`,
//! methods calling `inspec.<resource>`, a FilterTable) and plain helper
//! classes. A profile resource named like a built-in one replaces it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::inspec::ast::{MethodDef, Node};
use crate::inspec::filter_table;
use crate::inspec::interp::{Args, Flow, Frame, Interp, R};
use crate::inspec::support::{Table, TableSpec};
use crate::inspec::value::{ClassRef, Shared, Value};

/// A profile-defined class or module.
#[derive(Debug)]
pub struct ClassDef {
    /// Full name (`Outer::Inner`).
    pub name: String,
    /// Superclass, when it is a profile class.
    pub superclass: Option<Rc<ClassDef>>,
    /// `module` rather than `class`.
    pub is_module: bool,
    /// Inherits `Inspec.resource(1)` (directly or through a superclass).
    pub resource_base: Cell<bool>,
    /// Instance methods.
    pub methods: RefCell<HashMap<String, Arc<MethodDef>>>,
    /// `def self.x` methods.
    pub class_methods: RefCell<HashMap<String, Arc<MethodDef>>>,
    /// Constants and class-level instance variables.
    pub consts: RefCell<HashMap<String, Value>>,
    /// `name 'x'`: the resource name profiles call it by.
    pub resource_name: RefCell<Option<String>>,
    /// `attr_reader` names.
    pub readers: RefCell<Vec<String>>,
    /// `attr_writer` names.
    pub writers: RefCell<Vec<String>>,
    /// Included modules.
    pub includes: RefCell<Vec<Rc<ClassDef>>>,
    /// FilterTable installed on this class.
    pub table: RefCell<Option<Shared<TableSpec>>>,
}

impl ClassDef {
    fn new(
        name: String,
        superclass: Option<Rc<ClassDef>>,
        is_module: bool,
        resource: bool,
    ) -> Self {
        Self {
            name,
            superclass,
            is_module,
            resource_base: Cell::new(resource),
            methods: RefCell::new(HashMap::new()),
            class_methods: RefCell::new(HashMap::new()),
            consts: RefCell::new(HashMap::new()),
            resource_name: RefCell::new(None),
            readers: RefCell::new(Vec::new()),
            writers: RefCell::new(Vec::new()),
            includes: RefCell::new(Vec::new()),
            table: RefCell::new(None),
        }
    }

    /// An instance method and the class that defines it.
    pub fn find_method(self: &Rc<Self>, name: &str) -> Option<(Arc<MethodDef>, Rc<ClassDef>)> {
        if let Some(m) = self.methods.borrow().get(name) {
            return Some((m.clone(), self.clone()));
        }
        for inc in self.includes.borrow().iter().rev() {
            if let Some(found) = inc.find_method(name) {
                return Some(found);
            }
        }
        self.superclass.as_ref().and_then(|s| s.find_method(name))
    }

    fn find_class_method(self: &Rc<Self>, name: &str) -> Option<(Arc<MethodDef>, Rc<ClassDef>)> {
        if let Some(m) = self.class_methods.borrow().get(name) {
            return Some((m.clone(), self.clone()));
        }
        self.superclass
            .as_ref()
            .and_then(|s| s.find_class_method(name))
    }

    /// Whether this class is `other` or inherits from or includes it.
    pub fn is_a(self: &Rc<Self>, other: &Rc<ClassDef>) -> bool {
        Rc::ptr_eq(self, other)
            || self.includes.borrow().iter().any(|i| i.is_a(other))
            || self.superclass.as_ref().is_some_and(|s| s.is_a(other))
    }

    fn has_reader(&self, name: &str) -> bool {
        self.readers.borrow().iter().any(|r| r == name)
            || self.superclass.as_ref().is_some_and(|s| s.has_reader(name))
    }

    fn has_writer(&self, name: &str) -> bool {
        self.writers.borrow().iter().any(|r| r == name)
            || self.superclass.as_ref().is_some_and(|s| s.has_writer(name))
    }

    /// The FilterTable of this class or a superclass.
    pub fn table_spec(&self) -> Option<Shared<TableSpec>> {
        self.table
            .borrow()
            .clone()
            .or_else(|| self.superclass.as_ref().and_then(|s| s.table_spec()))
    }
}

/// An instance of a profile class.
#[derive(Debug)]
pub struct Object {
    /// Its class.
    pub class: Rc<ClassDef>,
    /// Instance variables (`@x`).
    pub ivars: RefCell<Vec<(String, Value)>>,
    /// Set when its constructor raised `ResourceSkipped` (false) or `ResourceFailed` (true).
    pub unavailable: RefCell<Option<(bool, String)>>,
}

/// How a profile resource shows when it has no `to_s`.
pub fn default_display(o: &Object) -> String {
    o.class
        .resource_name
        .borrow()
        .clone()
        .unwrap_or_else(|| format!("#<{}>", o.class.name))
}

/// Whether `name` is an instance member of the object (not counting `method_missing`).
pub fn responds(o: &Rc<Object>, name: &str) -> bool {
    o.class.find_method(name).is_some()
        || o.class.has_reader(name)
        || name
            .strip_suffix('=')
            .is_some_and(|w| o.class.has_writer(w))
        || name == "inspec"
        || o.class.table_spec().is_some() && table_member(o, name)
}

fn table_member(o: &Rc<Object>, name: &str) -> bool {
    let Some(spec) = o.class.table_spec() else {
        return false;
    };
    let spec = spec.borrow();
    matches!(
        name,
        "where" | "entries" | "raw_data" | "exist?" | "exists?" | "count"
    ) || spec.columns.iter().any(|c| c.name == name)
        || spec.matchers.iter().any(|(n, _)| n == name)
        || spec.properties.iter().any(|(n, _)| n == name)
}

/// Calls `name` on a profile object; `None` when it has no such member.
///
/// # Errors
/// As the method.
pub fn object_call(
    it: &Interp<'_>,
    o: &Rc<Object>,
    recv: &Value,
    name: &str,
    args: &Args,
) -> R<Option<Value>> {
    if let Some((m, owner)) = o.class.find_method(name) {
        return it
            .call_user_method(recv.clone(), &m, Some(owner), args.clone())
            .map(Some);
    }
    if o.class.has_reader(name) {
        return Ok(Some(it.ivar_get(recv, &format!("@{name}"))));
    }
    if let Some(w) = name.strip_suffix('=')
        && o.class.has_writer(w)
    {
        let v = args.get(0).cloned().unwrap_or(Value::Nil);
        it.ivar_set(recv, &format!("@{w}"), v.clone());
        return Ok(Some(v));
    }
    match name {
        "inspec" => return Ok(Some(Value::Inspec)),
        "resource_skipped?" => {
            return Ok(Some(Value::Bool(
                o.unavailable.borrow().as_ref().is_some_and(|(f, _)| !f),
            )));
        }
        "resource_failed?" => {
            return Ok(Some(Value::Bool(
                o.unavailable.borrow().as_ref().is_some_and(|(f, _)| *f),
            )));
        }
        "resource_exception_message" => {
            return Ok(Some(
                o.unavailable
                    .borrow()
                    .as_ref()
                    .map_or(Value::Nil, |(_, m)| Value::str(m)),
            ));
        }
        "skip_resource" | "fail_resource" => {
            *o.unavailable.borrow_mut() = Some((
                name == "fail_resource",
                args.get(0).map(Value::to_s).unwrap_or_default(),
            ));
            return Ok(Some(Value::Nil));
        }
        _ => {}
    }
    if table_member(o, name) {
        return match object_table(it, o, recv)? {
            Some(table) => filter_table::call(it, &table, name, args),
            // The rows depend on facts not gathered yet.
            None => Ok(Some(Value::Unknown)),
        };
    }
    if let Some((mm, owner)) = o.class.find_method("method_missing") {
        let mut a = args.clone();
        a.pos.insert(0, Value::sym(name));
        return it
            .call_user_method(recv.clone(), &mm, Some(owner), a)
            .map(Some);
    }
    Ok(None)
}

/// The FilterTable view of an object whose class installed one.
fn object_table(it: &Interp<'_>, o: &Rc<Object>, recv: &Value) -> R<Option<Rc<Table>>> {
    let Some(spec) = o.class.table_spec() else {
        return Ok(None);
    };
    let method = spec
        .borrow()
        .data_method
        .clone()
        .unwrap_or_else(|| "table".into());
    let data = match o.class.find_method(&method) {
        Some((m, owner)) => it.call_user_method(recv.clone(), &m, Some(owner), Args::none())?,
        None => it.ivar_get(recv, &format!("@{method}")),
    };
    if data.is_unknown() {
        return Ok(None);
    }
    let rows = filter_table::rows_of(&data);
    Ok(Some(Rc::new(Table {
        display: it.to_s_value(recv)?,
        rows,
        spec: Rc::new(spec.borrow().clone()),
    })))
}

impl Interp<'_> {
    /// Reads `@name` of an object (or of a class body).
    pub fn ivar_get(&self, target: &Value, name: &str) -> Value {
        match target {
            Value::Object(o) => o
                .ivars
                .borrow()
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Value::Nil, |(_, v)| v.clone()),
            Value::Class(ClassRef::User(c)) => {
                c.consts.borrow().get(name).cloned().unwrap_or(Value::Nil)
            }
            _ => Value::Nil,
        }
    }

    /// Writes `@name`.
    pub fn ivar_set(&self, target: &Value, name: &str, v: Value) {
        match target {
            Value::Object(o) => {
                let mut ivars = o.ivars.borrow_mut();
                match ivars.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v,
                    None => ivars.push((name.to_string(), v)),
                }
            }
            Value::Class(ClassRef::User(c)) => {
                c.consts.borrow_mut().insert(name.to_string(), v);
            }
            _ => {}
        }
    }

    /// `def` at the top level, in a class body, or `def self.x`.
    pub fn define_method(&self, def: &Arc<MethodDef>, f: &Frame) {
        let in_body = matches!(&f.self_val, Value::Class(ClassRef::User(_)));
        match (&f.def_class, in_body) {
            (Some(cls), true) => {
                let table = if def.singleton {
                    &cls.class_methods
                } else {
                    &cls.methods
                };
                table.borrow_mut().insert(def.name.clone(), def.clone());
            }
            _ => {
                self.methods
                    .borrow_mut()
                    .insert(def.name.clone(), def.clone());
            }
        }
    }

    /// `class Name < Super ... end` (reopening an existing class) or `module`.
    ///
    /// # Errors
    /// As the class body.
    pub fn define_class(
        &self,
        name: &str,
        sup: Value,
        body: Option<&Node>,
        is_module: bool,
        f: &Frame,
    ) -> R<Value> {
        let full = match &f.def_class {
            Some(outer) => format!("{}::{name}", outer.name),
            None => name.to_string(),
        };
        let existing = self.classes.borrow().get(&full).cloned();
        let cls = match existing {
            Some(c) => c,
            None => {
                let (superclass, resource) = match &sup {
                    Value::Class(ClassRef::User(c)) => (Some(c.clone()), c.resource_base.get()),
                    Value::Class(ClassRef::Builtin("Inspec::Resource")) => (None, true),
                    _ => (None, false),
                };
                let c = Rc::new(ClassDef::new(full.clone(), superclass, is_module, resource));
                let mut classes = self.classes.borrow_mut();
                classes.insert(full.clone(), c.clone());
                let short = name.rsplit("::").next().unwrap_or(name);
                classes
                    .entry(short.to_string())
                    .or_insert_with(|| c.clone());
                c
            }
        };
        if let Some(body) = body {
            self.eval(body, &Self::class_frame(&cls))?;
        }
        Ok(Value::Nil)
    }

    /// Receiver-less calls inside a class body: the resource DSL and attribute declarations.
    pub(crate) fn class_body_call(
        &self,
        cls: &Rc<ClassDef>,
        name: &str,
        args: &Args,
        f: &Frame,
    ) -> R<Option<Value>> {
        let names = || {
            args.positional()
                .iter()
                .map(Value::to_s)
                .collect::<Vec<_>>()
        };
        match name {
            "name" if !args.pos.is_empty() => {
                *cls.resource_name.borrow_mut() = Some(names().concat());
            }
            "supports"
            | "desc"
            | "example"
            | "private"
            | "public"
            | "protected"
            | "private_class_method"
            | "module_function" => {}
            "attr_reader" => cls.readers.borrow_mut().extend(names()),
            "attr_writer" => cls.writers.borrow_mut().extend(names()),
            "attr_accessor" => {
                cls.readers.borrow_mut().extend(names());
                cls.writers.borrow_mut().extend(names());
            }
            "include" | "extend" | "prepend" => {
                for m in args.positional() {
                    if let Value::Class(ClassRef::User(m)) = m {
                        cls.includes.borrow_mut().push(m.clone());
                    }
                }
            }
            "alias_method" => {
                let n = names();
                if let [new, old] = n.as_slice()
                    && let Some((m, _)) = cls.find_method(old)
                {
                    cls.methods.borrow_mut().insert(new.clone(), m);
                }
            }
            _ => {
                if let Some((m, owner)) = cls.find_class_method(name) {
                    let _ = owner;
                    return self
                        .call_user_method(f.self_val.clone(), &m, Some(cls.clone()), args.clone())
                        .map(Some);
                }
                return Ok(None);
            }
        }
        Ok(Some(Value::Nil))
    }

    /// Class methods of a profile class (`new`, `def self.x`).
    pub(crate) fn user_class_call(
        &self,
        cls: &Rc<ClassDef>,
        name: &str,
        args: &Args,
    ) -> R<Option<Value>> {
        match name {
            "new" => self.instantiate(cls, args.clone()).map(Some),
            "name" | "to_s" => Ok(Some(Value::str(&cls.name))),
            _ => match cls.find_class_method(name) {
                Some((m, _)) => self
                    .call_user_method(
                        Value::Class(ClassRef::User(cls.clone())),
                        &m,
                        Some(cls.clone()),
                        args.clone(),
                    )
                    .map(Some),
                None => {
                    let v = cls.consts.borrow().get(name).cloned();
                    Ok(v)
                }
            },
        }
    }

    /// `Class.new(args)`: runs `initialize`; a resource that raises
    /// `ResourceSkipped`/`ResourceFailed` becomes unavailable, as in InSpec.
    ///
    /// # Errors
    /// As `initialize`.
    pub fn instantiate(&self, cls: &Rc<ClassDef>, args: Args) -> R<Value> {
        let obj = Rc::new(Object {
            class: cls.clone(),
            ivars: RefCell::new(Vec::new()),
            unavailable: RefCell::new(None),
        });
        let v = Value::Object(obj.clone());
        if let Some((init, owner)) = cls.find_method("initialize") {
            match self.call_user_method(v.clone(), &init, Some(owner), args) {
                Ok(_) => {}
                Err(Flow::Raise(e, _))
                    if e.class == "ResourceSkipped" || e.class == "ResourceFailed" =>
                {
                    *obj.unavailable.borrow_mut() =
                        Some((e.class == "ResourceFailed", e.message.clone()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(v)
    }
}
