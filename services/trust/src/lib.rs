//! The trust layer: signing keys, DSSE envelopes and in-toto statements (in progress).
