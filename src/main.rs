//! The `chunkah` command line.

mod cli;

fn main() -> std::process::ExitCode {
    large_allocations_from_the_system();
    cli::main()
}

/// Buffers of 1 MiB and more (delta references and contents, fetched
/// ranges) are mapped from the system and given back when freed, instead
/// of staying in glibc's per-thread arenas once freed: with worker threads
/// each holding such an arena, freed buffers would otherwise keep the
/// peak resident memory up (apply with a delta on a 5 GB image).
fn large_allocations_from_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
