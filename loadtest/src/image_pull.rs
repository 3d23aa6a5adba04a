//! Pull, unpack and scan a generated image from a real registry: a
//! Distribution server on loopback (TLS, basic auth), an image of about
//! 100 MB in 20,000 files built by umoci and pushed by skopeo, pulled by
//! digest through `scanfleet-image-fetch` and scanned with
//! `container-hardening` through the local-root target. Prints the wall
//! time of each phase and the process's peak RSS (everything heavy but
//! the pull, unpack and scan runs in child processes).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use scanfleet_image_fetch::adapters::image_pull::pull_image;
use scanfleet_image_fetch::adapters::registry_client::{
    Credentials, RegistryClient, RegistryOptions,
};
use scanfleet_image_fetch::layer_entry::UnpackLimits;
use scanfleet_image_fetch::manifest::Platform;
use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::scan::scan;
use scanfleet_scan_intents::ImageDigest;
use scanfleet_test_harness::registry::{TestRegistry, build_layout_with};
use scanfleet_test_harness::repo_root;

/// Options for the image benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Regular files in the image.
    #[arg(long, default_value_t = 20_000)]
    files: usize,
    /// Megabytes of file content (incompressible, so the layer is as big).
    #[arg(long, default_value_t = 100)]
    megabytes: usize,
    /// Pull-unpack-scan runs; each is printed.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where images are unpacked (the worker's `--image-work-dir`; default
    /// the temp dir). The filesystem matters: see docs/benchmarks.md.
    #[arg(long)]
    work_dir: Option<std::path::PathBuf>,
}

/// Fills `rootfs` with `files` files of pseudo-random bytes, `total` in
/// all, in directories of 100, plus the few system files profiles read.
fn populate(rootfs: &Path, files: usize, total: usize) {
    let per_file = total / files.max(1);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\n").unwrap();
    let mut body = vec![0u8; per_file];
    for i in 0..files {
        let dir = rootfs.join(format!("srv/app/d{:04}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for chunk in body.chunks_mut(8) {
            let v = next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        std::fs::write(dir.join(format!("f{i:05}.bin")), &body).unwrap();
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// This process's user and system CPU seconds so far (less sensitive to
/// other load than wall time). Children (umoci, skopeo, the registry) are
/// not counted.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |n: usize| {
        rest.split_whitespace()
            .nth(n)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (11 and 12 after the name), in
    // clock ticks of 1/100 s on Linux.
    (field(11) / 100.0, field(12) / 100.0)
}

/// Runs the benchmark.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("layout");
    let t = Instant::now();
    build_layout_with(&layout, "bench", |rootfs| {
        populate(rootfs, args.files, args.megabytes << 20);
    });
    println!("built the image with umoci in {:.2?}", t.elapsed());
    let registry = TestRegistry::start("bench", "bench-pw", None);
    let t = Instant::now();
    let digest = ImageDigest::parse(&registry.push(&layout, "bench", "bench/big"))?;
    println!("pushed {digest} with skopeo in {:.2?}", t.elapsed());
    std::fs::remove_dir_all(&layout)?;
    let profile = load_profile_dir(
        &repo_root().join("profiles/container-hardening"),
        &Default::default(),
    )
    .context("loading container-hardening")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!("peak RSS before the runs: {:.1} MiB", peak_rss_mib());
    let cpu = cpu_seconds();
    println!("run | pull | unpack | scan | total | entries | bytes | controls");
    for run in 1..=args.runs {
        let client = RegistryClient::new(
            &registry.host(),
            "bench/big",
            RegistryOptions {
                ca_bundle: Some(registry.pki.ca.clone()),
                credentials: Some(Credentials {
                    username: "bench".into(),
                    password: "bench-pw".to_owned().into(),
                }),
                ..RegistryOptions::default()
            },
        )?;
        let t = Instant::now();
        let image = runtime.block_on(pull_image(
            &client,
            &digest,
            &Platform::default(),
            UnpackLimits::default(),
            Some(args.work_dir.as_deref().unwrap_or(tmp.path())),
        ))?;
        let s = Instant::now();
        let target = LocalRoot::new(image.root(), GatherLimits::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_recorded_metadata(image.recorded.clone());
        let report = scan(&profile, &target).map_err(|e| anyhow::anyhow!("{e}"))?;
        let scan_time = s.elapsed();
        println!(
            "{run} | {:.2?} | {:.2?} | {scan_time:.2?} | {:.2?} | {} | {} | {}",
            image.timings.pull,
            image.timings.unpack,
            t.elapsed(),
            image.budget.entries,
            image.budget.bytes,
            report.outcomes.len()
        );
    }
    println!("peak RSS after the runs: {:.1} MiB", peak_rss_mib());
    let (user, sys) = cpu_seconds();
    println!(
        "CPU of the runs: user {:.2}s + sys {:.2}s",
        user - cpu.0,
        sys - cpu.1
    );
    Ok(())
}
