//! `kubectl pulse …`: kubectl finds this binary on PATH and passes the remaining arguments.
fn main() {
    kpulse::cli::main();
}
