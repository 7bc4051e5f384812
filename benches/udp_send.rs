//! The syslog destination's UDP send: 1000 relayed events (see
//! `support/relayed.rs`) as RFC 5426 datagrams to a socket on 127.0.0.1.
//!
//! - `send_1000/one_send_per_datagram`: a `send(2)` per datagram, what the
//!   destination did before `sendmmsg`; the baseline of the same run.
//! - `send_1000/sendmmsg`: `destinations::syslog::datagrams::send_all`, 1024
//!   datagrams a call.
//! - `send_1000/syslog_udp_sink`: the whole `SyslogSink::send` of the batch
//!   (encoding and `sendmmsg`).
//!
//! The receiving socket is never read: once its buffer is full the kernel
//! drops what arrives, so every iteration pays the same sending path
//! (the loopback delivery runs on the sending thread). Measured in CPU time
//! of the benchmarking thread (user and system), which stays meaningful on
//! a machine busy with other work; `elements/…` is datagrams per CPU-second.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use siem_relay::destinations::syslog::datagrams::{self, Datagrams};
use siem_relay::destinations::syslog::{BodyReader, SyslogSink};
use siem_relay::destinations::{Delivery, Sink};
use std::net::UdpSocket;

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpuTime;

#[path = "support/relayed.rs"]
mod relayed;
use relayed::{batch, ctx, table, EVENTS};

/// The messages of octet-counted frames (`LEN SP MSG`...), one datagram each.
fn datagrams_of(frames: &[u8]) -> Datagrams {
    let mut grams = Datagrams::default();
    let mut rest = frames;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ').expect("frame length");
        let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
        let msg = &rest[sp + 1..sp + 1 + len];
        grams.push(|b| b.extend_from_slice(msg), |d| d.len());
        rest = &rest[sp + 1 + len..];
    }
    grams
}

fn udp_send(c: &mut Criterion<ThreadCpuTime>) {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("receiver");
    let addr = rx.local_addr().unwrap();
    let batch = batch();
    let settings = format!("address = \"{addr}\"\nmode = \"udp\"\nformat = \"syslog\"");
    let sink = SyslogSink::new(table(&settings), &ctx("bench_udp")).expect("syslog settings");
    let grams = datagrams_of(&sink.encode_frames(&batch, BodyReader::Hint));
    assert_eq!(grams.len() as u64, EVENTS);
    let bytes: u64 = (0..grams.len()).map(|i| grams.get(i).len() as u64).sum();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let std_tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    std_tx.connect(addr).unwrap();
    let tokio_tx = rt.block_on(async {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.connect(addr).await.unwrap();
        s
    });

    for in_bytes in [false, true] {
        let unit = if in_bytes { "bytes" } else { "elements" };
        let mut g = c.benchmark_group(format!("{unit}/send_1000"));
        g.throughput(if in_bytes {
            Throughput::Bytes(bytes)
        } else {
            Throughput::Elements(EVENTS)
        });
        g.bench_function("one_send_per_datagram", |b| {
            b.iter(|| {
                for i in 0..grams.len() {
                    std_tx.send(black_box(grams.get(i))).expect("send");
                }
            })
        });
        g.bench_function("tokio_send_per_datagram", |b| {
            b.iter(|| {
                rt.block_on(async {
                    for i in 0..grams.len() {
                        tokio_tx.send(black_box(grams.get(i))).await.expect("send");
                    }
                })
            })
        });
        g.bench_function("sendmmsg", |b| {
            b.iter(|| {
                rt.block_on(datagrams::send_all(
                    &tokio_tx,
                    &grams,
                    datagrams::PER_CALL,
                    None,
                ))
                .expect("sendmmsg")
            })
        });
        g.bench_function("syslog_udp_sink", |b| {
            b.iter(|| {
                let d = rt.block_on(sink.send(black_box(&batch)));
                assert!(matches!(d, Delivery::Delivered), "{d:?}");
            })
        });
        g.finish();
    }
    drop(rx);
}

criterion_group! {
    name = benches;
    config = relayed::criterion();
    targets = udp_send
}
criterion_main!(benches);
