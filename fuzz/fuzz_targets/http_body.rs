//! Fuzz target: `/v1/events`, HEC event and HEC raw body parsing never
//! panic, and every accepted event encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::parse::{parse_events_body, parse_hec_body, parse_hec_raw, Origin};

fuzz_target!(|data: &[u8]| {
    let origin = Origin {
        listener: "fuzz",
        address: None,
        syslog_hint: true,
    };
    let mut meta = serde_json::Map::new();
    meta.insert("host".into(), "fuzz-host".into());
    for parsed in [
        parse_events_body(data, 0, &origin),
        parse_hec_body(data, 0, &origin),
        parse_hec_raw(data, 0, chrono_tz::Tz::UTC, &meta, None, &origin),
    ] {
        if let Ok(events) = parsed {
            for ev in events {
                let _ = ev.encode();
            }
        }
    }
});
