//! The on-disk record: a fixed little-endian header followed by the event's
//! compact JSON body and an optional hint. This module is the only place
//! that knows the layout.
//!
//! ```text
//! offset size field
//!  0     2    magic  b"SR"
//!  2     1    version (2; version 1 records, without hints, are still read)
//!  3     1    flags (bit 0: parse_error; bit 1: canonical body)
//!  4     4    payload_len (u32): body and hint
//!  8     4    crc32c of bytes 2..8 then 12..HEADER_LEN+payload_len
//! 12     8    seq (u64)
//! 20     8    timestamp_ms (i64)
//! 28     8    received_ms (i64)
//! 36     1    severity (syslog code 0..=7)
//! 37     1    category code (see `Category`; 0 = other)
//! 38     2    hint_len (u16; 0 = no hint; version 1: reserved, 0)
//! 40     4    tenant_hash (u32; 0 = no tenant)
//! 44     …    body (payload_len - hint_len bytes of JSON), then the hint
//! ```
//!
//! The hint is a cache, never the event: bytes a writer that already knew
//! them left for a reader that would otherwise recompute them from the body
//! (see [`syslog_hint`](super::syslog_hint)). Dropping it is always correct.
//!
//! The checksum covers the sequence number, so a stale record left in a
//! reused segment can never pass as the record the reader expects.

use super::{Category, Severity};
use thiserror::Error;

pub const MAGIC: [u8; 2] = *b"SR";
pub const VERSION: u8 = 2;
/// The oldest record version still read (no hints).
pub const MIN_VERSION: u8 = 1;
/// The largest hint a record may carry.
pub const MAX_HINT_LEN: usize = u16::MAX as usize;
pub const HEADER_LEN: usize = 44;
/// The largest body a record may carry (16 MiB); larger bodies are refused at append.
pub const MAX_BODY_LEN: usize = 16 << 20;
pub const FLAG_PARSE_ERROR: u8 = 1;
/// The body is what the canonical writers (`Event::encode`, the direct
/// encoder) wrote: a compact JSON object whose first member is its only
/// top-level `event_id`, a string. Readers may then take the id from the
/// body's start instead of reading the whole body; a record without the
/// flag (an older ring's) is read in full.
pub const FLAG_CANONICAL: u8 = 2;

/// The filterable header fields, known before the sequence number is assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    pub timestamp_ms: i64,
    pub received_ms: i64,
    pub severity: Severity,
    pub category: u8,
    pub tenant_hash: u32,
    pub flags: u8,
}

impl RecordMeta {
    pub fn category_name(&self) -> Option<&'static str> {
        Category::name_of(self.category)
    }
}

/// Why bytes are not a valid record.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("truncated record: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("bad record magic")]
    BadMagic,
    #[error("unsupported record version {0}")]
    BadVersion(u8),
    #[error("record body length {0} exceeds the limit")]
    TooLong(usize),
    #[error("record checksum mismatch")]
    BadChecksum,
    #[error("record hint length {hint} exceeds its payload of {payload} bytes")]
    BadHint { hint: usize, payload: usize },
}

/// A validated record borrowed from a segment (or any buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub meta: RecordMeta,
    /// The canonical event as compact JSON.
    pub body: &'a [u8],
    /// The hint after the body (empty: none).
    pub hint: &'a [u8],
}

impl<'a> Record<'a> {
    /// Total encoded length of this record.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.len() + self.hint.len()
    }

    /// Validates and decodes the record at the start of `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Record<'a>, RecordError> {
        Self::decode_inner(buf, true)
    }

    /// [`Record::decode`] without the checksum: for bytes whose checksum
    /// this process has already checked (the ring's readers share that work,
    /// see `SegInfo::verified_off`). Every other check still applies, so a
    /// wrong length never reads out of bounds.
    pub fn decode_verified(buf: &'a [u8]) -> Result<Record<'a>, RecordError> {
        Self::decode_inner(buf, false)
    }

    #[inline(always)]
    fn decode_inner(buf: &'a [u8], check_crc: bool) -> Result<Record<'a>, RecordError> {
        if buf.len() < HEADER_LEN {
            return Err(RecordError::Truncated {
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        if buf[0..2] != MAGIC {
            return Err(RecordError::BadMagic);
        }
        if !(MIN_VERSION..=VERSION).contains(&buf[2]) {
            return Err(RecordError::BadVersion(buf[2]));
        }
        let body_len = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
        if body_len > MAX_BODY_LEN {
            return Err(RecordError::TooLong(body_len));
        }
        let total = HEADER_LEN + body_len;
        if buf.len() < total {
            return Err(RecordError::Truncated {
                need: total,
                have: buf.len(),
            });
        }
        let crc = u32::from_le_bytes(buf[8..12].try_into().unwrap());
        if check_crc && checksum(&buf[..total]) != crc {
            return Err(RecordError::BadChecksum);
        }
        let hint_len = usize::from(u16::from_le_bytes([buf[38], buf[39]]));
        if hint_len > body_len {
            return Err(RecordError::BadHint {
                hint: hint_len,
                payload: body_len,
            });
        }
        let body_end = total - hint_len;
        let rd64 = |o: usize| u64::from_le_bytes(buf[o..o + 8].try_into().unwrap());
        Ok(Record {
            seq: rd64(12),
            meta: RecordMeta {
                flags: buf[3],
                timestamp_ms: rd64(20) as i64,
                received_ms: rd64(28) as i64,
                severity: Severity::from_byte(buf[36]),
                category: buf[37],
                tenant_hash: u32::from_le_bytes(buf[40..44].try_into().unwrap()),
            },
            body: &buf[HEADER_LEN..body_end],
            hint: &buf[body_end..total],
        })
    }

    /// Reads only the sequence number and total length of the record at the
    /// start of `buf`, without checking the checksum (for skipping).
    pub fn peek(buf: &[u8]) -> Option<(u64, usize)> {
        if buf.len() < HEADER_LEN || buf[0..2] != MAGIC {
            return None;
        }
        let body_len = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize;
        Some((
            u64::from_le_bytes(buf[12..20].try_into().unwrap()),
            HEADER_LEN + body_len,
        ))
    }
}

/// CRC32C over everything but the magic and the checksum field itself.
fn checksum(rec: &[u8]) -> u32 {
    super::crc32c::append(super::crc32c::crc32c(&rec[2..8]), &rec[12..])
}

/// The part of `hint` a record stores: all of it, or nothing when it is
/// longer than [`MAX_HINT_LEN`] (a hint is a cache; leaving it out is correct).
pub fn stored_hint(hint: &[u8]) -> &[u8] {
    if hint.len() > MAX_HINT_LEN {
        &[]
    } else {
        hint
    }
}

/// The encoded length of a record with `body` and `hint`.
pub fn record_len(body: &[u8], hint: &[u8]) -> usize {
    HEADER_LEN + body.len() + stored_hint(hint).len()
}

/// Writes a record into `out`, which must be exactly [`record_len`] bytes
/// long. Returns the number of bytes written.
pub fn encode_into(out: &mut [u8], seq: u64, meta: &RecordMeta, body: &[u8], hint: &[u8]) -> usize {
    let hint = stored_hint(hint);
    let total = HEADER_LEN + body.len() + hint.len();
    debug_assert_eq!(out.len(), total);
    out[..HEADER_LEN].copy_from_slice(&header(seq, meta, body.len() + hint.len(), hint.len()));
    out[HEADER_LEN..HEADER_LEN + body.len()].copy_from_slice(body);
    out[HEADER_LEN + body.len()..total].copy_from_slice(hint);
    let crc = checksum(&out[..total]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    total
}

/// Appends a record to `out` (what [`encode_into`] writes, without first
/// zero-filling the room for it). Returns the number of bytes appended.
pub fn encode_append(
    out: &mut Vec<u8>,
    seq: u64,
    meta: &RecordMeta,
    body: &[u8],
    hint: &[u8],
) -> usize {
    let hint = stored_hint(hint);
    let at = out.len();
    out.extend_from_slice(&header(seq, meta, body.len() + hint.len(), hint.len()));
    out.extend_from_slice(body);
    out.extend_from_slice(hint);
    let crc = checksum(&out[at..]);
    out[at + 8..at + 12].copy_from_slice(&crc.to_le_bytes());
    out.len() - at
}

/// A record's header, its checksum still zero.
#[inline(always)]
fn header(seq: u64, meta: &RecordMeta, payload_len: usize, hint_len: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..2].copy_from_slice(&MAGIC);
    h[2] = VERSION;
    h[3] = meta.flags;
    h[4..8].copy_from_slice(&(payload_len as u32).to_le_bytes());
    h[12..20].copy_from_slice(&seq.to_le_bytes());
    h[20..28].copy_from_slice(&meta.timestamp_ms.to_le_bytes());
    h[28..36].copy_from_slice(&meta.received_ms.to_le_bytes());
    h[36] = meta.severity.to_byte();
    h[37] = meta.category;
    h[38..40].copy_from_slice(&(hint_len as u16).to_le_bytes());
    h[40..44].copy_from_slice(&meta.tenant_hash.to_le_bytes());
    h
}

/// Encodes a record without a hint into a fresh vector (tests, tools; the
/// ring writes in place).
pub fn encode_to_vec(seq: u64, meta: &RecordMeta, body: &[u8]) -> Vec<u8> {
    encode_with_hint_to_vec(seq, meta, body, &[])
}

/// [`encode_to_vec`] with a hint.
pub fn encode_with_hint_to_vec(seq: u64, meta: &RecordMeta, body: &[u8], hint: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; record_len(body, hint)];
    encode_into(&mut v, seq, meta, body, hint);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RecordMeta {
        RecordMeta {
            timestamp_ms: 1_700_000_000_000,
            received_ms: 1_700_000_000_500,
            severity: Severity::Error,
            category: 2,
            tenant_hash: 77,
            flags: FLAG_PARSE_ERROR,
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let v = encode_to_vec(42, &meta(), b"{\"a\":1}");
        let r = Record::decode(&v).unwrap();
        assert_eq!(r.seq, 42);
        assert_eq!(r.meta, meta());
        assert_eq!(r.body, b"{\"a\":1}");
        assert_eq!(Record::peek(&v), Some((42, v.len())));
    }

    #[test]
    fn appending_writes_what_encoding_in_place_writes() {
        let big_hint = vec![b'h'; MAX_HINT_LEN + 1];
        for (body, hint) in [
            (&b"{}"[..], &b""[..]),
            (b"{\"a\":1}", b"hint"),
            (b"{\"a\":1}", &big_hint[..]),
        ] {
            let mut in_place = vec![0u8; record_len(body, hint)];
            encode_into(&mut in_place, 9, &meta(), body, hint);
            let mut appended = b"before".to_vec();
            let n = encode_append(&mut appended, 9, &meta(), body, hint);
            assert_eq!(n, in_place.len());
            assert_eq!(&appended[..6], b"before");
            assert_eq!(&appended[6..], &in_place[..]);
            let r = Record::decode(&appended[6..]).unwrap();
            assert_eq!((r.body, r.hint), (body, stored_hint(hint)));
        }
    }

    fn assert_every_bit_flip_is_detected(v: &[u8]) {
        for i in 0..v.len() {
            for bit in 0..8 {
                let mut c = v.to_vec();
                c[i] ^= 1 << bit;
                if let Ok(r) = Record::decode(&c) {
                    panic!("flip at {i}.{bit} accepted: {r:?}");
                }
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        assert_every_bit_flip_is_detected(&encode_to_vec(7, &meta(), b"{\"message\":\"hello\"}"));
    }

    #[test]
    fn hint_round_trips_and_every_bit_flip_is_detected() {
        let v = encode_with_hint_to_vec(9, &meta(), b"{\"a\":1}", b"\x01hint");
        let r = Record::decode(&v).unwrap();
        assert_eq!((r.body, r.hint), (&b"{\"a\":1}"[..], &b"\x01hint"[..]));
        assert_eq!(r.encoded_len(), v.len());
        assert_eq!(Record::peek(&v), Some((9, v.len())));
        assert_every_bit_flip_is_detected(&v);
    }

    #[test]
    fn version_1_records_are_read_and_unknown_versions_refused() {
        let mut v = encode_to_vec(3, &meta(), b"{}");
        v[2] = 1;
        let crc = checksum(&v);
        v[8..12].copy_from_slice(&crc.to_le_bytes());
        let r = Record::decode(&v).unwrap();
        assert_eq!((r.body, r.hint), (&b"{}"[..], &b""[..]));
        v[2] = 3;
        assert_eq!(Record::decode(&v), Err(RecordError::BadVersion(3)));
    }

    #[test]
    fn a_hint_longer_than_the_payload_is_refused() {
        let mut v = encode_to_vec(3, &meta(), b"{}");
        v[38..40].copy_from_slice(&3u16.to_le_bytes());
        let crc = checksum(&v);
        v[8..12].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            Record::decode(&v),
            Err(RecordError::BadHint {
                hint: 3,
                payload: 2
            })
        );
    }

    #[test]
    fn truncation_is_reported() {
        let v = encode_to_vec(7, &meta(), b"{}");
        assert!(matches!(
            Record::decode(&v[..v.len() - 1]),
            Err(RecordError::Truncated { .. })
        ));
        assert!(matches!(
            Record::decode(&v[..10]),
            Err(RecordError::Truncated { .. })
        ));
    }
}
