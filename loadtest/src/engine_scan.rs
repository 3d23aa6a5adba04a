//! How long `container-hardening` takes on a large image through each target,
//! and what it costs on the wire.
//!
//! The shell target's promise is one exec round trip per scan whatever the
//! profile; this benchmark checks that count (it fails if it is not 1) and
//! prints wall time, facts, bytes transferred and files walked for both the
//! local-root target and the shell target (`chroot DIR /bin/sh`, busybox).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::adapters::process_executor::ProcessExecutor;
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::{FactValue, Facts, GatherLimits, WalkFact};
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_engine::profile::Profile;
use scanfleet_scan_engine::scan::{Target, evaluate, plan};
use scanfleet_scan_engine::shell::ShellTarget;
use scanfleet_test_harness::rootfs::build_fixture;
use scanfleet_test_harness::{repo_root, system_tool};

/// Options for the engine benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Regular files added to the busybox rootfs (at least 20,000 for the
    /// documented figures).
    #[arg(long, default_value_t = 20_000)]
    files: usize,
    /// Scans per target; each is printed, so warm and cold runs show.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Profile directory to run.
    #[arg(long)]
    profile: Option<std::path::PathBuf>,
}

/// Adds `n` small files in directories of 100 under `/srv/app`, like an
/// application tree in an image.
fn populate(root: &Path, n: usize) -> anyhow::Result<()> {
    for i in 0..n {
        let dir = root.join(format!("srv/app/d{:04}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        }
        let body = format!("module {i}\n").repeat(1 + i % 8);
        std::fs::write(dir.join(format!("f{i:05}.txt")), body)?;
    }
    Ok(())
}

/// Entries in the tree, the root included (what a full walk must visit).
fn count_entries(dir: &Path) -> anyhow::Result<usize> {
    let mut n = 1;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        n += if e.file_type()?.is_dir() {
            count_entries(&e.path())?
        } else {
            1
        };
    }
    Ok(n)
}

fn walked(facts: &Facts) -> usize {
    facts
        .values
        .values()
        .map(|v| match v {
            FactValue::Walk(WalkFact::Entries { entries, .. }) => entries.len(),
            _ => 0,
        })
        .sum()
}

/// Control id -> status key.
type Verdicts = BTreeMap<String, String>;

/// One scan: gather, evaluate, render; returns the verdicts and the exec
/// round trips it took.
fn run_once(
    label: &str,
    profile: &Profile,
    target: &dyn Target,
) -> anyhow::Result<(Verdicts, u32)> {
    let t0 = Instant::now();
    let started = SystemTime::now();
    let p = plan(profile);
    let facts = target
        .gather(&p)
        .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    let gathered = t0.elapsed();
    let report = evaluate(profile, &facts, target.target_id(), started, t0);
    let hdf = to_hdf(&report);
    let wall = t0.elapsed();
    println!(
        "{label:<6} wall {:>8.1} ms (gather {:>8.1} ms)  facts {:>4}  walk entries {:>6}  bytes {:>10}  round trips {}",
        wall.as_secs_f64() * 1e3,
        gathered.as_secs_f64() * 1e3,
        report.facts_gathered,
        walked(&facts),
        report.stats.bytes_transferred,
        report.stats.round_trips,
    );
    let verdicts = hdf["profiles"][0]["controls"]
        .as_array()
        .context("HDF has controls")?
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                control_status(c).key().to_string(),
            )
        })
        .collect();
    Ok((verdicts, report.stats.round_trips))
}

/// Builds the rootfs, runs both targets and prints one line per scan.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let profile_dir = args
        .profile
        .clone()
        .unwrap_or_else(|| repo_root().join("profiles/container-hardening"));
    let profile =
        load_profile_dir(&profile_dir, &Default::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("rootfs");
    // The hardened fixture: a busybox image (busybox-static as /bin/sh),
    // accounts, configs; then the bulk files.
    build_fixture("rootfs-hardened.sh", &root);
    populate(&root, args.files)?;
    let entries = count_entries(&root)?;
    println!(
        "engine: profile {} ({} controls), rootfs of {} entries ({} added files), {} runs per target",
        profile.metadata.name,
        profile.controls.len(),
        entries,
        args.files,
        args.runs
    );

    let limits = GatherLimits::default();
    let local = LocalRoot::new(&root, limits).map_err(|e| anyhow::anyhow!("{e}"))?;
    let shell = ShellTarget::new(
        ProcessExecutor::new(
            system_tool("chroot").display().to_string(),
            vec![root.display().to_string(), "/bin/sh".into()],
            "chroot",
        ),
        "",
        limits,
    );
    let mut verdicts = Vec::new();
    for _ in 0..args.runs {
        verdicts.push(run_once("local", &profile, &local)?.0);
    }
    for _ in 0..args.runs {
        let (v, round_trips) = run_once("shell", &profile, &shell)?;
        ensure!(
            round_trips == 1,
            "shell target used {round_trips} exec round trips, not 1"
        );
        verdicts.push(v);
    }
    if verdicts.windows(2).any(|w| w[0] != w[1]) {
        bail!("the targets (or runs) disagree on some control's status");
    }
    println!(
        "exec round trips per shell scan: 1 (checked); verdicts identical across targets and runs"
    );
    Ok(())
}
