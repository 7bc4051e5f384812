//! Fuzzes the records' CRC32C (`siem_relay::event::crc32c`, three
//! `crc32` streams side by side) against the `crc32c` crate: for any bytes,
//! any starting CRC and any split of the bytes, the two agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siem_relay::event::crc32c;

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let (head, bytes) = data.split_at(6);
    let crc = u32::from_le_bytes(head[..4].try_into().unwrap());
    let split = usize::from(u16::from_le_bytes([head[4], head[5]])) % (bytes.len() + 1);
    let expected = ::crc32c::crc32c_append(crc, bytes);
    assert_eq!(crc32c::append(crc, bytes), expected);
    let (a, b) = bytes.split_at(split);
    assert_eq!(crc32c::append(crc32c::append(crc, a), b), expected);
});
