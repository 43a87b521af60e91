//! A bounded pool of worker threads, each with a queue of its own. The
//! request thread hands it the requests that compute an argon2id hash, so
//! that a flood of logins queues behind the hashes and pages do not. Tasks
//! of one shard (one browser's visit) go to one worker, one after another,
//! in the order they came; a full queue refuses the task at once and hands
//! it back, so that the caller can answer "busy" and change nothing.

use crate::metrics::Metrics;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

pub struct Pool<T> {
    /// Each task with the time it was queued.
    queues: Vec<SyncSender<(Instant, T)>>,
    threads: Vec<JoinHandle<()>>,
    /// Where a task without a shard tries first.
    next: AtomicUsize,
    /// The queue's depth and waits, for `/metrics`.
    metrics: Arc<Metrics>,
}

impl<T: Send + 'static> Pool<T> {
    /// Starts `workers` threads named `name-N`, each running `init` once
    /// and then `work` on each of up to `queue` waiting tasks in turn. A
    /// task that panics is the task's end, not the worker's. How many tasks
    /// wait, and how long each waited, go to `metrics`.
    pub fn start(
        name: &str,
        (workers, queue): (usize, usize),
        metrics: Arc<Metrics>,
        init: fn(),
        work: impl Fn(T) + Send + Sync + 'static,
    ) -> std::io::Result<Pool<T>> {
        let work = Arc::new(work);
        let mut queues = Vec::new();
        let mut threads = Vec::new();
        for n in 0..workers.max(1) {
            let (tx, rx) = mpsc::sync_channel::<(Instant, T)>(queue.max(1));
            let work = work.clone();
            let metrics = metrics.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || {
                    init();
                    for (queued, task) in rx {
                        let queue = &metrics.hashing;
                        queue.depth.fetch_sub(1, Ordering::Relaxed);
                        queue.waited.observe(queued.elapsed());
                        if catch_unwind(AssertUnwindSafe(|| work(task))).is_err() {
                            say!("kagi: a task of the hashing pool panicked");
                        }
                    }
                })?;
            queues.push(tx);
            threads.push(thread);
        }
        Ok(Pool {
            queues,
            threads,
            next: AtomicUsize::new(0),
            metrics,
        })
    }

    /// Queues `task`: on the worker of `shard`, or without one on the next
    /// worker with room. The task comes back when its queue is full.
    pub fn submit(&self, shard: Option<u64>, task: T) -> Result<(), T> {
        let n = self.queues.len();
        let mut task = task;
        let tries = match shard {
            Some(s) => vec![(s % n as u64) as usize],
            None => {
                let first = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|i| (first + i) % n).collect()
            }
        };
        // Counted before it is queued, so that the worker never takes away
        // what was not added yet.
        let depth = &self.metrics.hashing.depth;
        depth.fetch_add(1, Ordering::Relaxed);
        for i in tries {
            match self.queues[i].try_send((Instant::now(), task)) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) => task = back.1,
            }
        }
        depth.fetch_sub(1, Ordering::Relaxed);
        Err(task)
    }
}

impl<T> Drop for Pool<T> {
    /// Lets the workers finish what is queued, then waits for them.
    fn drop(&mut self) {
        self.queues.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::sync::{Barrier, Mutex};

    #[test]
    fn a_full_queue_hands_the_task_back_and_a_shard_keeps_its_order() {
        let gate = Arc::new(Barrier::new(2));
        let (done, finished) = channel();
        let done = Mutex::new(done);
        let g = gate.clone();
        let pool = Pool::start(
            "test",
            (1, 2),
            Arc::default(),
            || {},
            move |n: u32| {
                if n == 0 {
                    g.wait();
                }
                done.lock().unwrap().send(n).unwrap();
            },
        )
        .unwrap();
        // The worker holds task 0 until the gate opens; 1 and 2 wait.
        pool.submit(Some(7), 0).unwrap();
        let mut queued = vec![];
        let mut refused = None;
        for n in 1..10 {
            match pool.submit(Some(7), n) {
                Ok(()) => queued.push(n),
                Err(back) => {
                    refused = Some(back);
                    break;
                }
            }
        }
        let refused = refused.expect("a bounded queue fills");
        assert!(queued.len() <= 3, "{queued:?}");
        gate.wait();
        drop(pool);
        let ran: Vec<u32> = finished.iter().collect();
        let mut expected = vec![0];
        expected.extend(&queued);
        assert_eq!(ran, expected, "one shard, one worker, in order");
        assert!(!ran.contains(&refused));
    }
}
