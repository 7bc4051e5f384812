//! Fuzz target: the RFC 6587 framer never panics, never emits a frame over
//! the limit, and gives the same frames however the input is chunked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::parse::{Frame, Framer, FramerConfig, Oversize};

fn run(cfg: FramerConfig, chunks: &[&[u8]]) -> Vec<Result<Frame, siem_relay::parse::FramingError>> {
    let mut f = Framer::new(cfg);
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        while let Some(fr) = f.next_frame() {
            out.push(Ok(fr));
        }
    }
    out.extend(f.finish());
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let cfg = FramerConfig {
        max_message_bytes: usize::from(ctl & 0x3f) + 1,
        oversize: if ctl & 0x40 != 0 {
            Oversize::Skip
        } else {
            Oversize::Truncate
        },
    };
    let whole = run(cfg, &[input]);
    for fr in whole.iter().flatten() {
        if let Frame::Message(b) | Frame::Truncated(b) = fr {
            assert!(b.len() <= cfg.max_message_bytes);
        }
    }
    let split = input.len() / 3;
    let (a, rest) = input.split_at(split);
    let (b, c) = rest.split_at(rest.len() / 2);
    assert_eq!(whole, run(cfg, &[a, b, c]));
});
