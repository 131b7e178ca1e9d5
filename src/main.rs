//! The `hookgate` command line. Everything it does is in the library (`cli::run`).

/// mimalloc instead of glibc's malloc: the gateway allocates and frees small buffers per event on
/// every thread (HTTP, JSON, SQLite), where glibc's arenas spent a fifth of its CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hookgate::main()
}
