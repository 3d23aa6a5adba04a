//! How many result envelopes one core can sign and verify.
//!
//! Every result crosses sign (worker) and verify (collector) once, and
//! encryption twice when enabled, so these rates bound a single worker's or
//! collector's result throughput from the crypto side.

use std::time::{Duration, Instant};

use scanfleet_test_harness::fleet::SampleStatement;
use scanfleet_trust::statement::ReportRef;
use scanfleet_trust::{
    AgeIdentities, Envelope, IN_TOTO_PAYLOAD_TYPE, ScanStatement, SigningKey, TrustedKeys,
    encryption,
};

/// Options for the envelope benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Envelopes per phase.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Trusted keys in the verifier's set (rotation makes this > 1).
    #[arg(long, default_value_t = 3)]
    trusted_keys: usize,
}

fn statement(i: usize) -> ScanStatement {
    SampleStatement::new(&format!("01JDQ2Z8Y6W5M3N4P7R9S{i:05}"))
        .target("bench", "ns", &format!("pod-{i}"), "app")
        .digest_hex(&format!("{i:064x}"))
        .with(|p| {
            p.profile.name = "container-hardening".into();
            p.report = Some(ReportRef {
                media_type: scanfleet_trust::statement::HDF_MEDIA_TYPE.into(),
                sha256: "ef".repeat(32),
                size: 180_000,
            });
        })
        .build()
}

fn report(phase: &str, count: usize, elapsed: Duration, bytes: usize) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{phase:<22} {count:>7} in {secs:>7.3} s  {:>10.0}/s  {:>8.1} µs each  {:>8.1} MiB/s",
        count as f64 / secs,
        secs * 1e6 / count as f64,
        bytes as f64 / secs / (1024.0 * 1024.0)
    );
}

/// Runs the benchmark and prints one line per phase.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let key = SigningKey::generate();
    let mut trusted: TrustedKeys = (1..args.trusted_keys)
        .map(|_| SigningKey::generate().public_key().clone())
        .collect();
    trusted.insert(key.public_key().clone());
    let payloads: Vec<Vec<u8>> = (0..args.count).map(|i| statement(i).to_payload()).collect();
    let payload_bytes: usize = payloads.iter().map(Vec::len).sum();
    println!(
        "envelopes: {} statements, {} bytes average, {} trusted keys",
        args.count,
        payload_bytes / args.count,
        trusted.len()
    );

    let start = Instant::now();
    let wires: Vec<String> = payloads
        .iter()
        .map(|p| Envelope::sign(IN_TOTO_PAYLOAD_TYPE, p, &key).to_json())
        .collect();
    report("sign + encode", args.count, start.elapsed(), payload_bytes);
    let wire_bytes: usize = wires.iter().map(String::len).sum();

    let start = Instant::now();
    for wire in &wires {
        let verified = trusted.verify_json(
            wire.as_bytes(),
            scanfleet_trust::DEFAULT_MAX_ENVELOPE_BYTES,
            Some(IN_TOTO_PAYLOAD_TYPE),
        )?;
        ScanStatement::from_payload(&verified.payload)?;
    }
    report(
        "decode + verify + parse",
        args.count,
        start.elapsed(),
        wire_bytes,
    );

    let collector = AgeIdentities::generate();
    let recipients = collector.recipients();
    let subset = args.count.min(2_000);
    let subset_bytes: usize = wires[..subset].iter().map(String::len).sum();
    let start = Instant::now();
    let sealed: Vec<Vec<u8>> = wires[..subset]
        .iter()
        .map(|w| encryption::encrypt(w.as_bytes(), &recipients, false))
        .collect::<Result<_, _>>()?;
    report("age encrypt", subset, start.elapsed(), subset_bytes);
    let start = Instant::now();
    for ct in &sealed {
        encryption::decrypt(ct, &collector, scanfleet_trust::DEFAULT_MAX_ENVELOPE_BYTES)?;
    }
    report("age decrypt", subset, start.elapsed(), subset_bytes);
    Ok(())
}
