//! The `hookgate` command line. Everything it does is in the library (`cli::run`).

fn main() -> std::process::ExitCode {
    hookgate::main()
}
