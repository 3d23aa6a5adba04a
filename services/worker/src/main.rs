//! The worker process: see `scanfleet_worker::worker_service`.

fn main() -> std::process::ExitCode {
    scanfleet_process_lifecycle::main::<scanfleet_worker::config::Config>()
}
