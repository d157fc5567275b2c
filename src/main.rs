//! The `lookout` binary: parses the command line and hands over to `cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = lookout::cli::Cli::parse();
    let mask = lookout::cli::init_logging(&cli);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(lookout::cli::run(cli, mask))
}

/// glibc gives threads that allocate at once arenas of their own (up to
/// eight per core) and keeps what is freed in each: with the web, monitor,
/// probes and SQLite threads, resident memory at 10,000 probes was 128 MB
/// against 96 MB with two arenas (BENCHMARKS.md). An operator's own
/// `MALLOC_ARENA_MAX` wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the one FFI call in the binary; see SAFETY below
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only tunes the allocator, and runs before any
        // other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
