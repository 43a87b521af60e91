//! The operating-system settings kagi makes for itself at start, the
//! priority of its background threads, and the signals that stop it.

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

/// A signal that asks kagi to stop: SIGTERM (a service manager, `kill`) or
/// SIGINT (Ctrl-C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopSignal(libc::c_int);

impl StopSignal {
    /// The signal's name, for the log.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::SIGTERM => "SIGTERM",
            libc::SIGINT => "SIGINT",
            _ => "a signal",
        }
    }

    /// The exit status of a process this signal ended at once, as a shell
    /// reports one killed by it: 128 + its number.
    pub fn exit_code(self) -> i32 {
        128 + self.0
    }
}

/// SIGTERM and SIGINT as a set.
fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset only write the set they are given,
    // which is initialised by the first before the second reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Holds SIGTERM and SIGINT for `wait_for_stop`: blocked in the calling
/// thread, and so in every thread it starts afterwards, they wait as
/// pending instead of ending the process. To be called before any thread
/// starts: one started earlier keeps the default action, and a signal
/// delivered to it would end kagi at once.
///
/// Why blocked signals taken by `sigwait`, and no handler: a handler may do
/// only what is async-signal-safe, so it could do no more than write a byte
/// to a pipe for a thread to read (the self-pipe), and the stop would still
/// run on that thread. `sigwait` hands the signal to ordinary code on the
/// thread that waits for it, with no handler and no state shared with one;
/// `signalfd` needs the same mask and adds a descriptor to read, for
/// nothing more here. The mask is also inherited by child processes, of
/// which kagi starts none.
pub fn hold_stop_signals() {
    let set = stop_signals();
    // SAFETY: pthread_sigmask only changes the calling thread's mask; the
    // set is valid and the old mask is not asked for.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGTERM or SIGINT, held by `hold_stop_signals`.
pub fn wait_for_stop() -> StopSignal {
    let set = stop_signals();
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: sigwait reads the set and writes the signal it took to
        // `signal`, both valid for the call.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            return StopSignal(signal);
        }
    }
}
