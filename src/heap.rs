//! glibc allocator settings for a process that reads large short-lived answers (a Prometheus
//! answer for 30,000 containers is tens of MB of JSON and as much again parsed). Without them,
//! RSS stayed 100+ MB above the live heap: each thread's own arena kept its freed pages, and the
//! long-lived rows allocated between the transient blocks pinned them.
//! Elsewhere (musl, macOS) these do nothing.

/// Caps glibc's heap arenas (by default up to 8 per core, one per allocating thread): two are
/// enough for an app whose threads mostly wait. Call before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands the free pages inside the heap back to the OS, after a large answer has been dropped.
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused memory; it is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}
