//! The process heap: handing freed memory back to the system.

/// Returns the heap's free pages to the system. A search index rebuild at start builds tens of
/// MiB of buffers on the indexing thread and frees them at its end; glibc keeps freed memory for
/// reuse, so without this the server would go on holding a rebuild's peak while it serves (at
/// a million tasks, 164 MiB of its own after a search load instead of about 70).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_back_free_memory() {
    // SAFETY: malloc_trim only releases free memory of glibc's own heaps; it takes no pointer
    // and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Elsewhere the allocator decides (nothing to do).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back_free_memory() {}
