//! The `hookgate` command line. Everything it does is in the library (`cli::run`).

/// jemalloc instead of glibc's malloc: the gateway allocates and frees small buffers per event on
/// every thread (HTTP, JSON, SQLite), where glibc's arenas spent a fifth of its CPU, and frees
/// many on another thread than the one that allocated them (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main` (its `malloc_conf`, a C string): never transparent huge
/// pages, whatever the system's default (Cargo.toml says why).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &u8 = &b"thp:never\0"[0];

fn main() -> std::process::ExitCode {
    hookgate::main()
}
