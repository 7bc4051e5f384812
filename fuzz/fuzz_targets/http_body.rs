//! Fuzz target: `/v1/events`, HEC event and HEC raw body parsing never
//! panic, and every accepted event encodes; the HEC ones also with a query
//! `time` taken from the input's first bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::parse::{
    parse_events_body, parse_hec_body, parse_hec_body_with, parse_hec_raw, Origin,
};

fuzz_target!(|data: &[u8]| {
    let origin = Origin {
        listener: "fuzz",
        address: None,
        syslog_hint: true,
    };
    let mut meta = serde_json::Map::new();
    meta.insert("host".into(), "fuzz-host".into());
    // a query `time`: the input's first bytes, when they are text
    let time = std::str::from_utf8(&data[..data.len().min(20)]).ok();
    for parsed in [
        parse_events_body(data, 0, &origin),
        parse_hec_body(data, 0, &origin),
        parse_hec_body_with(data, 0, &meta, time, &origin),
        parse_hec_raw(data, 0, chrono_tz::Tz::UTC, &meta, None, &origin),
        parse_hec_raw(data, 0, chrono_tz::Tz::UTC, &meta, time, &origin),
    ] {
        if let Ok(events) = parsed {
            for ev in events {
                let _ = ev.encode();
            }
        }
    }
});
