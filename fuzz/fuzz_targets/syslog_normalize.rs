//! Fuzz target: any bytes become exactly one canonical event that encodes
//! and decodes (never a panic, never a drop).
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::event::Event;
use siem_relay::parse::{syslog_line_to_event, Origin};

fuzz_target!(|data: &[u8]| {
    let origin = Origin {
        listener: "fuzz",
        address: Some("127.0.0.1:1"),
        syslog_hint: true,
    };
    let ev = syslog_line_to_event(
        data,
        1_790_000_000_000,
        chrono_tz::Tz::Europe__Berlin,
        &origin,
    );
    let enc = ev.encode();
    Event::decode(enc.body()).expect("encoded event decodes");
});
