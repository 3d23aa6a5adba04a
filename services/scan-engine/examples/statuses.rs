//! Scratch: statuses and results of a profile on a root.
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let root = std::env::args().nth(2).unwrap();
    let verbose = std::env::args().nth(3).is_some();
    let p = match scanfleet_scan_engine::adapters::profile_dir::load_profile_dir(
        std::path::Path::new(&dir),
        &Default::default(),
    ) {
        Ok(p) => p,
        Err(e) => {
            println!("{e}");
            return;
        }
    };
    let t = scanfleet_scan_engine::adapters::local_root::LocalRoot::new(&root, Default::default())
        .unwrap();
    let r = scanfleet_scan_engine::scan::scan(&p, &t).unwrap();
    let h = scanfleet_scan_engine::hdf::to_hdf(&r);
    for c in h["profiles"][0]["controls"].as_array().unwrap() {
        println!(
            "{} {} impact={}",
            c["id"],
            scanfleet_scan_engine::hdf::control_status(c).key(),
            c["impact"]
        );
        for x in c["results"].as_array().unwrap() {
            if verbose || x["status"] != "passed" {
                println!(
                    "    {} | {} | {}",
                    x["status"],
                    x["code_desc"],
                    x["message"]
                        .as_str()
                        .or(x["skip_message"].as_str())
                        .unwrap_or("")
                        .replace('\n', " ")
                );
            }
        }
    }
    println!("round trips {}", r.stats.round_trips);
}
