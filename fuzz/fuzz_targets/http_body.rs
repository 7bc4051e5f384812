//! Fuzz target: `/v1/events` and HEC body parsing never panic, and every
//! accepted event encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::parse::{parse_events_body, parse_hec_body, Origin};

fuzz_target!(|data: &[u8]| {
    let origin = Origin {
        listener: "fuzz",
        address: None,
        syslog_hint: true,
    };
    for parsed in [
        parse_events_body(data, 0, &origin),
        parse_hec_body(data, 0, &origin),
    ] {
        if let Ok(events) = parsed {
            for ev in events {
                let _ = ev.encode();
            }
        }
    }
});
