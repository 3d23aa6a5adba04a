//! Scan ids: ULIDs, built from an injected clock reading and randomness so
//! that tests (and replays) get exactly the ids they expect.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use ulid::Ulid;

/// A source of random 64-bit words. Production wiring backs it with the
/// OS generator; tests use [`SplitMix64`] with a fixed seed.
pub trait RandomSource {
    /// The next random word.
    fn next_u64(&mut self) -> u64;
}

/// SplitMix64: a tiny, fast, well-mixed deterministic generator. Not for
/// secrets; ids only need to be unique, not unguessable.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A scan id: a ULID, so ids sort by creation time (cheap "newest first"
/// listings) and are 26 characters of Crockford base32, safe in URLs,
/// subjects and message ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScanId(Ulid);

/// Not a ULID string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ULID (26 Crockford base32 characters)")]
pub struct ScanIdError;

impl ScanId {
    /// A new id for `now`; times before 1970 clamp to 0.
    pub fn generate(now: SystemTime, rng: &mut dyn RandomSource) -> Self {
        let ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        Self(Ulid::from_parts(ms, random))
    }

    /// Parses the canonical 26-character form (case-insensitive, as
    /// Crockford base32 is). Strict: the string must round-trip, which
    /// refuses values over 128 bits (the decoder would truncate them) and
    /// alias letters, so one scan has exactly one id string.
    pub fn parse(s: &str) -> Result<Self, ScanIdError> {
        if s.len() != 26 {
            return Err(ScanIdError);
        }
        let id = Ulid::from_string(s).map_err(|_| ScanIdError)?;
        if !id.to_string().eq_ignore_ascii_case(s) {
            return Err(ScanIdError);
        }
        Ok(Self(id))
    }

    /// Milliseconds since the Unix epoch at which the id was generated.
    pub fn timestamp_ms(&self) -> u64 {
        self.0.timestamp_ms()
    }
}

impl fmt::Display for ScanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn ids_are_deterministic_given_clock_and_seed() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let a = ScanId::generate(t, &mut SplitMix64::new(7));
        let b = ScanId::generate(t, &mut SplitMix64::new(7));
        let c = ScanId::generate(t, &mut SplitMix64::new(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.timestamp_ms(), 1_795_000_000_123);
        assert_eq!(a.to_string().len(), 26);
        assert_eq!(ScanId::parse(&a.to_string()), Ok(a));
        assert_eq!(ScanId::parse(&a.to_string().to_lowercase()), Ok(a));
    }

    #[test]
    fn ids_sort_by_time() {
        let mut rng = SplitMix64::new(1);
        let ids: Vec<ScanId> = (0..50)
            .map(|i| {
                ScanId::generate(
                    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + i),
                    &mut rng,
                )
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let strings: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut sorted_strings = strings.clone();
        sorted_strings.sort();
        assert_eq!(strings, sorted_strings);
    }

    #[test]
    fn parse_rejects_non_ulids() {
        for bad in [
            "",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
            "01ARZ3NDEKTSV4RRFFQ69G5FA!",
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
        ] {
            assert_eq!(ScanId::parse(bad), Err(ScanIdError), "{bad:?}");
        }
        assert!(ScanId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").is_ok());
    }

    #[test]
    fn splitmix_matches_reference_values() {
        // First outputs for seed 0, from the reference C implementation
        // (Vigna, splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }
}
