//! Fuzzes the segment scanner and record decoder on arbitrary bytes: never
//! panics, every record it reports decodes with a valid checksum, sequence
//! numbers strictly increase, and offsets stay inside the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::buffer::scan::scan;
use siem_relay::event::Record;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let expected = u64::from_le_bytes(data[..8].try_into().unwrap()) % 1_000_000;
    let body = &data[8..];
    let mut last = None;
    let rep = scan(body, 0, expected, |off, rec| {
        assert!(off + rec.encoded_len() <= body.len());
        let again = Record::decode(&body[off..]).expect("reported record must decode");
        assert_eq!(again.seq, rec.seq);
        if let Some(l) = last {
            assert!(rec.seq > l);
        }
        last = Some(rec.seq);
    });
    assert!(rep.end <= body.len());
    let _ = Record::decode(body);
    let _ = Record::peek(body);
});
