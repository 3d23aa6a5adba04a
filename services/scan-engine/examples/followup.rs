//! Scratch: which facts a profile only finds after the first round trip (chroot shell target).
use scanfleet_scan_engine::scan::Target;
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let root = std::env::args().nth(2).unwrap();
    let p = scanfleet_scan_engine::adapters::profile_dir::load_profile_dir(
        std::path::Path::new(&dir),
        &Default::default(),
    )
    .unwrap();
    let exec = scanfleet_scan_engine::adapters::process_executor::ProcessExecutor::new(
        "/usr/sbin/chroot".to_string(),
        vec![root.clone(), "/bin/sh".into()],
        "chroot".to_string(),
    );
    let t = scanfleet_scan_engine::shell::ShellTarget::new(exec, "", Default::default());
    let plan = scanfleet_scan_engine::scan::plan(&p);
    let facts = t.gather(&plan).unwrap();
    let outs = scanfleet_scan_engine::scan::evaluate_checks(&p, &facts, None);
    for (c, o) in p.controls.iter().zip(outs.iter()) {
        for x in o {
            if !x.missing.is_empty() {
                println!("{} {:?} {:?}", c.id, x.missing, x.pending_calls);
            }
        }
    }
    println!("planned {}", plan.requests.len());
}
