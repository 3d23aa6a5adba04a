//! One delivery as the HTTP layer received it.

/// Headers and the raw body of one webhook delivery.
///
/// The body must be the exact bytes received: GHCR's signature covers them,
/// so any re-serialisation before verification would break (or worse,
/// bypass) it.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    headers: &'a [(&'a str, &'a [u8])],
    body: &'a [u8],
}

/// A header the receiver needs appears more than once, which would let a
/// proxy and this code read different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RepeatedHeader;

impl<'a> WebhookRequest<'a> {
    /// Wraps received headers (name, raw value) and body bytes.
    pub fn new(headers: &'a [(&'a str, &'a [u8])], body: &'a [u8]) -> Self {
        Self { headers, body }
    }

    /// The raw body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The value of header `name` (ASCII case-insensitive), refusing
    /// repeats.
    pub(crate) fn header(&self, name: &str) -> Result<Option<&'a [u8]>, RepeatedHeader> {
        let mut found = None;
        for (n, v) in self.headers {
            if n.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(RepeatedHeader);
                }
                found = Some(*v);
            }
        }
        Ok(found)
    }
}
