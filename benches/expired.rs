//! Fills a database with expired recovery flows, for `scripts/bench` to
//! measure the sweep on: `cargo bench --bench expired -- DIR COUNT`.

use kagi::store::{Flow, KaigoFlow, Store};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let dir = std::path::PathBuf::from(&args[0]);
    let count: u64 = args[1].parse().unwrap();
    // Private, as kagi serve demands of its data directory.
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .unwrap();
    let store = Store::open(&dir, 8 << 20, &kagi::store::default_key_file(&dir)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for i in 0..count {
        // Expired a minute ago, as abandoned recoveries would be.
        store
            .put_flow(
                &format!("{i:064x}"),
                &Flow::Kaigo(KaigoFlow::Failed),
                now - 60,
            )
            .unwrap();
    }
    store.flush().unwrap();
    println!("{count} expired flows in {}", dir.display());
}
