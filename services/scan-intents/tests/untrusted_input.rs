//! Property-style checks over generated input: the parsers of untrusted
//! strings (target URIs, label selectors, cron expressions, scan ids)
//! answer with a value or an error, never a panic, and what they accept
//! round-trips. Seeded generator, so failures reproduce.

use scanfleet_scan_intents::{
    ContainerRef, CronExpr, LabelSelector, RandomSource, ScanId, SelectorLimits, SplitMix64,
};

fn random_string(rng: &mut SplitMix64, alphabet: &[u8], max_len: usize) -> String {
    let len = (rng.next_u64() % (max_len as u64 + 1)) as usize;
    (0..len)
        .map(|_| alphabet[(rng.next_u64() % alphabet.len() as u64) as usize] as char)
        .collect()
}

#[test]
fn selectors_never_panic_and_accepted_ones_round_trip() {
    let mut rng = SplitMix64::new(11);
    let alphabet = b"ab=!,() inotin.-_/ \t=x9<>";
    let limits = SelectorLimits::default();
    let mut accepted = 0;
    for _ in 0..20_000 {
        let s = random_string(&mut rng, alphabet, 24);
        if let Ok(sel) = LabelSelector::parse(&s, &limits) {
            accepted += 1;
            let again = LabelSelector::parse(&sel.to_string(), &limits)
                .unwrap_or_else(|e| panic!("{s:?} -> {sel} does not re-parse: {e}"));
            assert_eq!(again, sel, "{s:?}");
        }
    }
    assert!(accepted > 100, "generator too hostile: {accepted} accepted");
}

#[test]
fn target_uris_never_panic_and_accepted_ones_round_trip() {
    let mut rng = SplitMix64::new(12);
    let mut accepted = 0;
    for _ in 0..20_000 {
        // Three short segments, mostly from the name alphabet, sometimes
        // with separators or junk mixed in.
        let segs: Vec<String> = (0..3)
            .map(|_| random_string(&mut rng, b"ab-9ab-9.ab/Z%", 6))
            .collect();
        let s = format!("k8s://{}", segs.join("/"));
        if let Ok(c) = ContainerRef::parse_uri(&s) {
            accepted += 1;
            assert_eq!(c.to_string(), s);
        }
    }
    assert!(accepted > 50, "generator too hostile: {accepted} accepted");
    // Arbitrary bytes, including multi-byte characters.
    for _ in 0..5_000 {
        let s = random_string(&mut rng, "k8s:/aé\u{0}".as_bytes(), 40);
        let _ = ContainerRef::parse_uri(&s);
    }
}

#[test]
fn cron_never_panics_and_accepted_ones_fire() {
    let mut rng = SplitMix64::new(13);
    let alphabet = b"0123456789*/-,@janmonsu";
    let mut accepted = 0;
    for _ in 0..20_000 {
        // Five (sometimes four or six) short fields.
        let n = 4 + (rng.next_u64() % 3) as usize;
        // Mostly plausible tokens, a quarter of them random junk.
        let pool = [
            "*", "*/5", "1", "0-10", "mon", "jan", "1,2", "5/15", "7", "2-3/1", "12",
        ];
        let fields: Vec<String> = (0..n)
            .map(|_| {
                if rng.next_u64().is_multiple_of(4) {
                    random_string(&mut rng, alphabet, 3)
                } else {
                    pool[(rng.next_u64() % pool.len() as u64) as usize].to_owned()
                }
            })
            .collect();
        let s = fields.join(" ");
        if let Ok(e) = CronExpr::parse(&s) {
            accepted += 1;
            let next = e.next_after(1_795_395_190);
            assert!(
                next.is_some_and(|t| t > 1_795_395_190),
                "{s:?} accepted but never fires"
            );
        }
    }
    assert!(accepted > 20, "generator too hostile: {accepted} accepted");
}

#[test]
fn scan_id_parse_never_panics() {
    let mut rng = SplitMix64::new(14);
    for _ in 0..20_000 {
        let s = random_string(&mut rng, b"0123456789ABCDEFGHJKMNPQRSTVWXYZILOU!z", 27);
        if let Ok(id) = ScanId::parse(&s) {
            assert!(id.to_string().eq_ignore_ascii_case(&s));
        }
    }
}
