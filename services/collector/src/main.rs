//! The collector process: see `scanfleet_collector::run_with_ready`.

fn main() -> std::process::ExitCode {
    scanfleet_process_lifecycle::main::<scanfleet_collector::config::Config>()
}
