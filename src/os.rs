//! The operating-system settings kagi makes for itself at start, and the
//! priority of its background threads.

/// glibc serves a large allocation with mmap, but after the first one is
/// freed it raises that threshold and serves the next ones from the heap,
/// which it keeps: every argon2id hash (19 MiB) would stay resident. A
/// fixed threshold of 1 MiB keeps the heap for small things and hands big
/// blocks back when they are freed.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tunable of the allocator.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Opening a large database allocates and frees a lot (sled reads its
/// whole log); glibc keeps what was freed unless asked to give it back.
pub fn give_back_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, whose
/// default is to kill the process. Ignored, the write fails with EFBIG
/// instead, and kagi answers 503 as for a full disk.
pub fn treat_a_file_size_limit_as_a_disk_error() {
    // SAFETY: setting a signal to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Each client connection holds several descriptors (its socket and the
/// way to tiny_http, both read and written from two threads): at the
/// default cap of 256 that is more than a soft limit of 1,024 allows, and
/// accept() would fail. The soft limit goes up to the hard one, as
/// servers' do.
pub fn use_every_descriptor_allowed() {
    // SAFETY: getrlimit and setrlimit read and set this process's limits
    // through a struct they own for the call.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Lowers the calling thread's priority (nice 10): on a busy machine the
/// request thread gets the core first, and a long sweep does not make
/// pages wait.
pub fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only read and set this thread's nice
    // value; a failure leaves it as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}
