//! The sweeper: a thread beside the store that keeps it bounded. Every
//! `store.sweep_interval_secs` it deletes what has expired (flows,
//! sessions, codes, links, guards) in batches, trims the audit trail by age
//! and the capture mailbox by count; once a second it runs the server's
//! chores (`start`'s `chores`). It sleeps on a channel, not in a poll: it
//! wakes when work is due, and stops as soon as its handle is dropped, or
//! the store is.

use super::Store;
use crate::clock::Clock;
use crate::config::StoreConfig;
use crate::metrics::Metrics;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Records deleted in one batch; between batches the request thread gets
/// a breath (a million records take 1 s more).
const BATCH: usize = 1000;

/// How often the chores run.
const CHORES_EVERY: Duration = Duration::from_secs(1);

/// The running sweeper. Dropping it stops the thread and waits for it.
pub struct Sweeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Starts sweeping `store`. `chores` runs once a second with the store
    /// (checking it is writable, writing tallies, work that waited for the
    /// database to open). Each round is counted and timed in `metrics`.
    pub fn start(
        store: &Arc<Store>,
        limits: StoreConfig,
        clock: Clock,
        metrics: Arc<Metrics>,
        mut chores: impl FnMut(&Store) + Send + 'static,
    ) -> Sweeper {
        let (stop, stopped) = mpsc::channel::<()>();
        let store = Arc::downgrade(store);
        let thread = std::thread::Builder::new()
            .name("kagi-sweep".into())
            .spawn(move || {
                crate::os::yield_to_requests();
                let every = Duration::from_secs(limits.sweep_interval_secs.max(1));
                let (mut next_sweep, mut next_chores) = (Instant::now(), Instant::now());
                loop {
                    let Some(store) = Weak::upgrade(&store) else {
                        return;
                    };
                    if Instant::now() >= next_chores {
                        chores(&store);
                        next_chores = Instant::now() + CHORES_EVERY;
                    }
                    // A database that is not open has nothing to sweep yet.
                    if Instant::now() >= next_sweep && store.unavailable().is_none() {
                        // On PostgreSQL one instance sweeps at a time;
                        // the others skip the round.
                        let round = store.as_the_sweeper(|| {
                            sweep(&store, &limits, clock.now(), &stopped, &metrics)
                        });
                        if let Err(e) = round {
                            say!("kagi: sweep: {e}");
                        }
                        next_sweep = Instant::now() + every;
                    }
                    drop(store);
                    let due = next_sweep.min(next_chores);
                    let wait = due.saturating_duration_since(Instant::now());
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .expect("spawning the sweeper");
        Sweeper {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One round: expired records in batches, then the append-only trees.
/// Stops between batches when the sweeper is told to. The round is counted
/// and timed in `metrics`, whatever it found.
fn sweep(
    store: &Store,
    limits: &StoreConfig,
    now: u64,
    stopped: &mpsc::Receiver<()>,
    metrics: &Metrics,
) {
    let stopping = || !matches!(stopped.try_recv(), Err(TryRecvError::Empty));
    let began = Instant::now();
    let mut swept = 0;
    loop {
        match store.sweep(now, BATCH) {
            Ok(n) if n == BATCH && !stopping() => {
                swept += n;
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(n) => {
                swept += n;
                break;
            }
            Err(e) => {
                say!("kagi: sweep: {e}");
                break;
            }
        }
    }
    // Append-only trees get a bound too: the audit trail by age, the
    // capture mailbox by count.
    let before = now.saturating_sub(limits.audit_retention_secs);
    while let Ok(BATCH) = store.trim_audit(before, BATCH) {
        if stopping() {
            break;
        }
    }
    while let Ok(BATCH) = store.trim_mailbox(limits.mailbox_keep, BATCH) {
        if stopping() {
            break;
        }
    }
    let took = began.elapsed();
    metrics.sweeps.observe(took);
    if swept >= BATCH {
        say!(
            "kagi: sweep: {swept} expired records in {:.0} ms",
            took.as_secs_f64() * 1000.0
        );
    }
}
