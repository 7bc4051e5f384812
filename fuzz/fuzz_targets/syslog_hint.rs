//! Fuzzes the record's syslog hint against arbitrary hint and body bytes:
//! `SyslogHint::parse` never panics and only returns slices of its inputs
//! with the message inside a JSON string of the body (or in the hint: a
//! kind 3 line, a JSON MSG as it came), and the `syslog`
//! destination (`format = "syslog"`) writes a message for every event, from
//! the hint or, when it does not parse, from the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::destinations::syslog::{BodyReader, SyslogSink};
use siem_relay::destinations::{Batch, BatchEvent, BuildContext};
use siem_relay::event::syslog_hint::{HintHeader, HintMessage, SyslogHint};
use siem_relay::event::{RecordMeta, Severity};
use std::sync::OnceLock;

fn sink() -> &'static SyslogSink {
    static SINK: OnceLock<SyslogSink> = OnceLock::new();
    SINK.get_or_init(|| {
        let table =
            toml::from_str("address = \"127.0.0.1:514\"\nmode = \"tcp\"\nformat = \"syslog\"")
                .expect("settings");
        let ctx = BuildContext {
            name: "fuzz".into(),
            base_dir: "/nonexistent".into(),
            data_dir: "/nonexistent".into(),
        };
        SyslogSink::new(table, &ctx).expect("sink")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (hint, body) = rest.split_at(usize::from(split).min(rest.len()));
    if let Some(h) = SyslogHint::parse(hint, body) {
        assert!(h.facility <= 23 && h.severity <= 7);
        let inside = |s: &[u8]| {
            let at = s.as_ptr() as usize;
            let base = hint.as_ptr() as usize;
            assert!(at >= base && at + s.len() <= base + hint.len());
        };
        let mut parts = match h.header {
            HintHeader::Rendered(run) => vec![run],
            HintHeader::Original(line) => {
                assert!(line.starts_with(b"<") && h.message.is_none());
                vec![line]
            }
            HintHeader::NotSyslog => {
                assert!(hint == [4] && h.message.is_none());
                vec![]
            }
            HintHeader::Fields {
                hostname: n,
                app_name: a,
                procid: p,
                msgid: m,
                structured_data,
            } => [n, a, p, m, Some(structured_data)]
                .into_iter()
                .flatten()
                .collect(),
        };
        match h.message {
            Some(HintMessage::Body(m)) => {
                let at = m.as_ptr() as usize - body.as_ptr() as usize;
                assert!(at >= 1 && at + m.len() < body.len());
                assert_eq!((body[at - 1], body[at + m.len()]), (b'"', b'"'));
            }
            // a JSON MSG as it came: carried in the hint itself
            Some(HintMessage::Raw(m)) => parts.push(m),
            None => {}
        }
        parts.into_iter().for_each(inside);
    }
    let meta = RecordMeta {
        timestamp_ms: 1_700_000_000_000,
        received_ms: 1_700_000_000_000,
        severity: Severity::Info,
        category: 0,
        tenant_hash: 0,
        flags: 0,
    };
    let ev = BatchEvent::with_hint(1, meta, body, hint);
    let frames = sink().encode_frames(&Batch::new(vec![ev]), BodyReader::Hint);
    // one octet-counted frame: `LEN SP <PRI>1 …`
    let sp = frames.iter().position(|&b| b == b' ').expect("MSG-LEN SP");
    assert_eq!(frames[sp + 1], b'<');
    let len: usize = std::str::from_utf8(&frames[..sp]).unwrap().parse().unwrap();
    assert_eq!(len, frames.len() - sp - 1);
});
