//! A cursor over parsed JSON that remembers where it is, so every
//! validation error can name the exact field (`events[2].target.digest`).

use serde_json::Value;

use crate::{ManifestDigest, WebhookError};

#[derive(Clone)]
pub(crate) struct Node<'a> {
    value: &'a Value,
    path: String,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Node<'a> {
    pub(crate) fn root(value: &'a Value) -> Result<Self, WebhookError> {
        let node = Self {
            value,
            path: String::new(),
        };
        node.object()?;
        Ok(node)
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn invalid(&self, problem: impl Into<String>) -> WebhookError {
        WebhookError::invalid(self.path.clone(), problem)
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn object(&self) -> Result<&'a serde_json::Map<String, Value>, WebhookError> {
        self.value
            .as_object()
            .ok_or_else(|| self.invalid(format!("expected an object, found {}", kind(self.value))))
    }

    /// The member `key`; absent and `null` both count as missing.
    pub(crate) fn opt(&self, key: &str) -> Result<Option<Node<'a>>, WebhookError> {
        Ok(match self.object()?.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Node {
                value,
                path: self.child_path(key),
            }),
        })
    }

    pub(crate) fn get(&self, key: &str) -> Result<Node<'a>, WebhookError> {
        self.opt(key)?
            .ok_or_else(|| WebhookError::invalid(self.child_path(key), "required field is missing"))
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.value.as_object().is_some_and(|o| o.contains_key(key))
    }

    pub(crate) fn str(&self) -> Result<&'a str, WebhookError> {
        self.value
            .as_str()
            .ok_or_else(|| self.invalid(format!("expected a string, found {}", kind(self.value))))
    }

    pub(crate) fn non_empty_str(&self) -> Result<&'a str, WebhookError> {
        let s = self.str()?;
        if s.is_empty() {
            return Err(self.invalid("must not be empty"));
        }
        Ok(s)
    }

    pub(crate) fn get_str(&self, key: &str) -> Result<&'a str, WebhookError> {
        self.get(key)?.non_empty_str()
    }

    /// An optional string member; empty counts as absent.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, WebhookError> {
        match self.opt(key)? {
            None => Ok(None),
            Some(n) => Ok(Some(n.str()?).filter(|s| !s.is_empty())),
        }
    }

    pub(crate) fn digest(&self) -> Result<ManifestDigest, WebhookError> {
        ManifestDigest::parse(self.str()?).map_err(|e| self.invalid(e.to_string()))
    }

    pub(crate) fn items(&self) -> Result<Vec<Node<'a>>, WebhookError> {
        let arr = self.value.as_array().ok_or_else(|| {
            self.invalid(format!("expected an array, found {}", kind(self.value)))
        })?;
        Ok(arr
            .iter()
            .enumerate()
            .map(|(i, value)| Node {
                value,
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    pub(crate) fn len(&self) -> Option<usize> {
        self.value.as_array().map(Vec::len)
    }

    pub(crate) fn number_text(&self) -> Result<String, WebhookError> {
        match self.value {
            Value::Number(n) => Ok(n.to_string()),
            v => Err(self.invalid(format!("expected a number, found {}", kind(v)))),
        }
    }
}
