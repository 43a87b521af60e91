//! The unit costs a recovery cannot avoid, measured on this machine: one
//! argon2id hash with kagi's default parameters (OWASP: 19 MiB, t=2, p=1)
//! and one sled write made durable with a flush. `scripts/bench` prints
//! them next to the whole-flow figures.
//!
//! Run: `cargo bench --bench costs`

use std::time::{Duration, Instant};

// The allocator kagi runs with: argon2id's block on huge pages, as in the
// server, so that the unit cost is the one the server pays.
#[global_allocator]
static ALLOCATOR: kagi::alloc::Allocator = kagi::alloc::Allocator;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let defaults = kagi::config::Config::default().argon2;
    let params = argon2::Params::new(
        defaults.memory_kib,
        defaults.iterations,
        defaults.parallelism,
        None,
    )
    .unwrap();
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    let hashes: Vec<Duration> = (0..15)
        .map(|i| {
            let started = Instant::now();
            hasher
                .hash_password_into(
                    format!("password{i}").as_bytes(),
                    b"somesaltsomesalt",
                    &mut out,
                )
                .unwrap();
            started.elapsed()
        })
        .collect();

    let dir = std::env::temp_dir().join(format!("kagi-bench-costs-{}", std::process::id()));
    let db = sled::open(&dir).unwrap();
    let tree = db.open_tree("t").unwrap();
    let flushes: Vec<Duration> = (0..50u32)
        .map(|i| {
            let started = Instant::now();
            tree.insert(i.to_be_bytes(), vec![7u8; 512]).unwrap();
            db.flush().unwrap();
            started.elapsed()
        })
        .collect();
    drop(tree);
    drop(db);
    let _ = std::fs::remove_dir_all(dir);
    println!(
        "argon2id_ms {:.2} flush_ms {:.2}",
        median(hashes).as_secs_f64() * 1000.0,
        median(flushes).as_secs_f64() * 1000.0
    );
}
