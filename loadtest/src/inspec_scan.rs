//! An InSpec-syntax profile of 400+ controls through a secure scan session
//! on kubesim (exec approach): profile load (parse and plan), whole-scan
//! wall time, exec round trips and bytes, for a profile whose facts are all
//! known up front and for the same profile with some controls whose
//! resource arguments come from other resources (two round trips).
//!
//! The profile is generated here, mixing the constructs of docs/profiles.md:
//! file attributes with `cmp`, `only_if`, `describe.one`, loops over inputs,
//! FilterTable `where` blocks, config parsers, packages, processes, Ruby
//! string and collection methods on fact values, a library resource, and
//! `command`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use scanfleet_kube_access::{ApiThrottle, ClusterAccess, ThrottleConfig};
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::hdf::{control_status, to_hdf};
use scanfleet_scan_session::{Approach, ScanRequest, SessionConfig, run_scan};

/// Options for the InSpec benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Controls in the generated profile.
    #[arg(long, default_value_t = 420)]
    controls: usize,
    /// Scans per variant.
    #[arg(long, default_value_t = 20)]
    scans: usize,
}

const FILES: [&str; 6] = [
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/os-release",
    "/bin/sh",
    "/etc/shadow",
];

/// One generated control of kind `k`; `dynamic` kinds need a second round trip.
fn control(i: usize, k: usize, dynamic: bool) -> String {
    let f = FILES[i % FILES.len()];
    let body = match k {
        0 => format!("  describe file('{f}') do\n    it {{ should exist }}\n    its('mode') {{ should cmp <= '0755' }}\n    its('owner') {{ should eq 'root' }}\n  end\n"),
        1 => format!("  only_if('no {f}') {{ file('{f}').exist? }}\n  describe file('{f}') do\n    it {{ should_not be_more_permissive_than('0755') }}\n  end\n"),
        2 => "  describe.one do\n    describe os do\n      its('family') { should eq 'debian' }\n    end\n    describe os do\n      its('family') { should eq 'linux' }\n    end\n  end\n".to_string(),
        3 => "  input('admins').each do |name|\n    describe user(name) do\n      it { should exist }\n      its('uid') { should be < 1000 }\n    end\n  end\n".to_string(),
        4 => "  describe passwd.where { uid.to_i.zero? } do\n    its('users') { should cmp ['root'] }\n  end\n".to_string(),
        5 => "  describe login_defs do\n    its('PASS_MAX_DAYS') { should cmp <= input('max_days') }\n  end\n".to_string(),
        6 => "  shells = passwd.shells.uniq.reject { |s| s.end_with?('nologin', 'false') }\n  describe shells.map { |s| s.split('/').last }.sort do\n    it { should_not be_empty }\n  end\n".to_string(),
        7 => "  %w[telnet nc nmap].each do |p|\n    describe package(p) do\n      it { should_not be_installed }\n    end\n  end\n".to_string(),
        8 => "  describe bench_accounts.where { uid < 1000 } do\n    its('count') { should be >= 1 }\n  end\n".to_string(),
        9 => "  describe processes('sshd') do\n    it { should_not exist }\n  end\n".to_string(),
        10 => "  describe parse_config_file('/etc/os-release') do\n    its('ID') { should match(/\\w+/) }\n  end\n".to_string(),
        _ => "  describe command('id -u') do\n    its('stdout.strip') { should match(/^\\d+$/) }\n  end\n".to_string(),
    };
    let body = if dynamic {
        "  users.where { uid >= 0 }.entries.first(3).each do |u|\n    describe directory(u.home) do\n      it { should be_directory }\n    end\n  end\n".to_string()
    } else {
        body
    };
    format!(
        "control 'bench-{i:04}' do\n  impact {}\n  title 'Generated control {i}'\n  tag nist: ['CM-6'], kind: {k}\n{body}end\n\n",
        [0.3, 0.5, 0.7][i % 3]
    )
}

/// Writes the profile; every `dynamic_every`-th control (0: none) is dynamic.
fn write_profile(dir: &std::path::Path, controls: usize, dynamic_every: usize) -> Result<()> {
    std::fs::create_dir_all(dir.join("controls"))?;
    std::fs::create_dir_all(dir.join("libraries"))?;
    std::fs::write(
        dir.join("inspec.yml"),
        "name: bench\nversion: 1.0.0\ninputs:\n  - name: admins\n    value: [root]\n  - name: max_days\n    value: 90\n",
    )?;
    std::fs::write(
        dir.join("libraries/accounts.rb"),
        "class BenchAccounts < Inspec.resource(1)\n  name 'bench_accounts'\n  filter = FilterTable.create\n  filter.register_column(:names, field: :name).register_column(:uids, field: :uid)\n  filter.install_filter_methods_on_resource(self, :rows)\n  def rows\n    inspec.passwd.entries.map { |e| { name: e.user, uid: e.uid.to_i } }\n  end\nend\n",
    )?;
    let per_file = 50;
    for file in 0..controls.div_ceil(per_file) {
        let mut text = String::new();
        for i in file * per_file..((file + 1) * per_file).min(controls) {
            let dynamic = dynamic_every > 0 && i % dynamic_every == dynamic_every - 1;
            text.push_str(&control(i, i % 12, dynamic));
        }
        std::fs::write(dir.join(format!("controls/generated_{file:02}.rb")), text)?;
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(args: &Args) -> Result<()> {
    if args.scans == 0 || args.controls < 12 {
        bail!("--scans must be at least 1 and --controls at least 12");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench(args))
}

async fn bench(args: &Args) -> Result<()> {
    let sim = kubesim::Kubesim::start_settled(kubesim::Config::demo()?, Duration::from_secs(60))
        .await
        .context("starting kubesim (needs root)")?;
    let throttle = ApiThrottle::new(ThrottleConfig {
        qps: 1000.0,
        burst: 1000,
        ..ThrottleConfig::default()
    })?;
    let admin =
        ClusterAccess::from_kubeconfig_throttled(&sim.admin_kubeconfig(), "admin", throttle)
            .await?;
    println!(
        "InSpec profile through exec on kubesim (web-misconfigured/web): {} controls, {} scans per variant",
        args.controls, args.scans
    );
    println!(
        "{:<26} {:>8} {:>6} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "variant", "load", "facts", "trips", "bytes", "p50", "p90", "max", "engine"
    );
    for (label, every) in [("all facts known up front", 0), ("1 in 20 dynamic", 20)] {
        let dir = tempfile::tempdir()?;
        write_profile(dir.path(), args.controls, every)?;
        let t = Instant::now();
        let profile = Arc::new(load_profile_dir(dir.path(), &BTreeMap::new())?);
        let load = t.elapsed();
        let mut times = Vec::new();
        let mut last = None;
        for i in 0..args.scans {
            let started = Instant::now();
            let outcome = run_scan(
                &admin,
                &SessionConfig::default(),
                ScanRequest {
                    scan_id: format!("01inspecbench{every:02}{i:06}"),
                    namespace: "apps".into(),
                    pod: "web-misconfigured".into(),
                    container: "web".into(),
                    approach: Approach::Exec,
                    profile: profile.clone(),
                    deadline: Duration::from_secs(60),
                },
            )
            .await
            .with_context(|| format!("scan {i}"))?;
            times.push(started.elapsed());
            last = Some(outcome.report);
        }
        times.sort();
        let report = last.context("at least one scan")?;
        let hdf = to_hdf(&report);
        let controls = hdf["profiles"][0]["controls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut by_status = BTreeMap::<&str, usize>::new();
        for c in &controls {
            *by_status.entry(control_status(c).key()).or_default() += 1;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{label:<26} {:>6.0}ms {:>6} {:>7} {:>10} {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>7.0}ms",
            ms(load),
            report.facts_gathered,
            report.stats.round_trips,
            report.stats.bytes_transferred,
            ms(times[times.len() / 2]),
            ms(times[times.len() * 9 / 10]),
            ms(times[times.len() - 1]),
            report.duration * 1000.0,
        );
        let mut line = String::new();
        for (k, n) in &by_status {
            let _ = write!(line, "{n} {k}, ");
        }
        println!("{:<26} statuses: {}", "", line.trim_end_matches(", "));
    }
    sim.shutdown().await;
    Ok(())
}
