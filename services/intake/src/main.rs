//! The intake process: see `scanfleet_intake::run_with_ready`.

fn main() -> std::process::ExitCode {
    scanfleet_process_lifecycle::main::<scanfleet_intake::config::Config>()
}
