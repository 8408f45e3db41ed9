fn main() {
    kpulse::cli::main();
}
