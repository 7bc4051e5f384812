//! The idle trim (`app::memory`): `trim` gives freed heap pages back to the
//! system, and a running relay trims once it has been quiet for
//! `IDLE_AFTER` (counted in `siem_relay_memory_trims_total`), not while
//! events flow. A test binary of its own: the tests measure the process's
//! resident set, so they run one at a time and apart from other tests.
//! Only where the relay trims: glibc's allocator (not the `mimalloc` build).
#![cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]

use metrics_exporter_prometheus::PrometheusBuilder;
use siem_relay::app::memory::{resident_bytes, trim, IDLE_AFTER};
use siem_relay::app::{load_config, Relay};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One test at a time: each moves the resident set the other measures.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn trim_gives_freed_pages_back() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // free memory the allocator keeps: many small blocks (below the mmap
    // threshold, so they live in an arena) of which all but the last are
    // freed; the last keeps the arena's top from shrinking
    let blocks: Vec<Vec<u8>> = (0..4096).map(|_| vec![1u8; 16 << 10]).collect();
    let keep = vec![1u8; 16 << 10];
    let allocated = resident_bytes().unwrap();
    drop(blocks);
    // freeing alone leaves the 64 MiB resident (else this test would pass
    // without a trim)
    let freed = resident_bytes().unwrap();
    assert!(
        freed + (16 << 20) >= allocated,
        "free released it: {allocated} -> {freed}"
    );
    let trimmed = trim().1.unwrap();
    drop(keep);
    assert!(
        allocated.saturating_sub(trimmed) >= 32 << 20,
        "trim released only {} of 64 MiB ({allocated} -> {freed} -> {trimmed})",
        freed.saturating_sub(trimmed)
    );
}

fn trims(handle: &metrics_exporter_prometheus::PrometheusHandle) -> u64 {
    handle
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("siem_relay_memory_trims_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[test]
fn a_relay_trims_once_quiet_and_not_while_busy() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(relay_trims_once_quiet());
}

async fn relay_trims_once_quiet() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        format!(
            r#"data_dir = "{d}"
buffer = {{ max_bytes = "4MiB", segment_bytes = "1MiB", fsync = "never" }}
sources.tcp = {{ type = "syslog_tcp", address = "127.0.0.1:0" }}
destinations.null = {{ type = "blackhole", batch_timeout = "20ms" }}
"#,
            d = dir.path().display()
        ),
    )
    .unwrap();
    let relay = Relay::start(load_config(&file).unwrap()).await.unwrap();
    let source = relay.source_addresses().await["tcp"];

    // busy for longer than IDLE_AFTER: an event every 200 ms, from the start
    let busy_for = IDLE_AFTER + Duration::from_secs(2);
    let sent = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(source).unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < busy_for {
            writeln!(s, "<13>1 - host app - - - event {n}").unwrap();
            n += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        n
    })
    .await
    .unwrap();
    assert!(sent >= 30, "sent {sent}");
    assert_eq!(trims(&handle), 0, "trimmed while events flowed");

    // then quiet: one trim within IDLE_AFTER and a tick or two
    let deadline = Instant::now() + IDLE_AFTER + Duration::from_secs(5);
    while trims(&handle) == 0 {
        assert!(
            Instant::now() < deadline,
            "no trim after the relay went quiet"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // and no second one while it stays quiet
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(trims(&handle), 1);
    relay.shutdown().await.unwrap();
}
