//! A small deterministic generator (SplitMix64), so that every hostile
//! input is a function of the suite's seed and its index: a failure
//! printed with its seed reproduces exactly.

/// The seed every run uses unless `HOSTILE_SEED` says otherwise.
pub const DEFAULT_SEED: u64 = 0x5CA7_F1EE_0013_0013;

/// The seed of this run: `HOSTILE_SEED` (decimal or 0x-hex) or
/// [`DEFAULT_SEED`].
///
/// # Panics
/// When `HOSTILE_SEED` is set but is not a number.
pub fn run_seed() -> u64 {
    match std::env::var("HOSTILE_SEED") {
        Err(_) => DEFAULT_SEED,
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("HOSTILE_SEED={text:?} is not a number"))
        }
    }
}

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    /// The stream of input `index` of `edge` under `seed`: independent of
    /// how many inputs other edges draw.
    pub fn for_input(seed: u64, edge: &str, index: usize) -> Self {
        let mut h = seed;
        for b in edge.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut s = Self(h ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        s.next_u64();
        s
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// `n` characters drawn from `alphabet`.
    pub fn text(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n).map(|_| char::from(*self.pick(alphabet))).collect()
    }

    /// `n` printable ASCII characters (what HTTP headers and gRPC metadata
    /// can carry).
    pub fn printable(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'!' + self.below(94) as u8))
            .collect()
    }

    /// A string of `n` arbitrary Unicode scalar values (controls, NUL,
    /// astral planes, combining marks).
    pub fn unicode(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| {
                loop {
                    let c = match self.below(4) {
                        0 => self.below(0x20) as u32,
                        1 => self.below(0x80) as u32,
                        2 => self.below(0x800) as u32,
                        _ => self.below(0x11_0000) as u32,
                    };
                    if let Some(c) = char::from_u32(c) {
                        break c;
                    }
                }
            })
            .collect()
    }
}

impl Seeded {
    /// [`Seeded::bytes`] of a length in `lo..=hi`.
    pub fn bytes_between(&mut self, lo: usize, hi: usize) -> Vec<u8> {
        let n = self.between(lo, hi);
        self.bytes(n)
    }

    /// [`Seeded::printable`] of a length in `lo..=hi`.
    pub fn printable_between(&mut self, lo: usize, hi: usize) -> String {
        let n = self.between(lo, hi);
        self.printable(n)
    }

    /// [`Seeded::unicode`] of a length in `lo..=hi`.
    pub fn unicode_between(&mut self, lo: usize, hi: usize) -> String {
        let n = self.between(lo, hi);
        self.unicode(n)
    }

    /// [`Seeded::text`] of a length in `lo..=hi`.
    pub fn text_between(&mut self, lo: usize, hi: usize, alphabet: &[u8]) -> String {
        let n = self.between(lo, hi);
        self.text(n, alphabet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_index_give_the_same_stream() {
        let a = Seeded::for_input(7, "intake-grpc", 3).bytes(32);
        let b = Seeded::for_input(7, "intake-grpc", 3).bytes(32);
        assert_eq!(a, b);
        assert_ne!(a, Seeded::for_input(7, "intake-grpc", 4).bytes(32));
        assert_ne!(a, Seeded::for_input(7, "collector-grpc", 3).bytes(32));
    }
}
