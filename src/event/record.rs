//! The on-disk record: a fixed little-endian header followed by the event's
//! compact JSON body. This module is the only place that knows the layout.
//!
//! ```text
//! offset size field
//!  0     2    magic  b"SR"
//!  2     1    version (1)
//!  3     1    flags (bit 0: parse_error)
//!  4     4    body_len (u32)
//!  8     4    crc32c of bytes 2..8 then 12..HEADER_LEN+body_len
//! 12     8    seq (u64)
//! 20     8    timestamp_ms (i64)
//! 28     8    received_ms (i64)
//! 36     1    severity (syslog code 0..=7)
//! 37     1    category code (see `Category`; 0 = other)
//! 38     2    reserved (0)
//! 40     4    tenant_hash (u32; 0 = no tenant)
//! 44     …    body (body_len bytes of JSON)
//! ```
//!
//! The checksum covers the sequence number, so a stale record left in a
//! reused segment can never pass as the record the reader expects.

use super::{Category, Severity};
use thiserror::Error;

pub const MAGIC: [u8; 2] = *b"SR";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 44;
/// The largest body a record may carry (16 MiB); larger bodies are refused at append.
pub const MAX_BODY_LEN: usize = 16 << 20;
pub const FLAG_PARSE_ERROR: u8 = 1;

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
}

/// A validated record borrowed from a segment (or any buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub meta: RecordMeta,
    pub body: &'a [u8],
}

impl<'a> Record<'a> {
    /// Total encoded length of this record.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Validates and decodes the record at the start of `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<Record<'a>, RecordError> {
        if buf.len() < HEADER_LEN {
            return Err(RecordError::Truncated {
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        if buf[0..2] != MAGIC {
            return Err(RecordError::BadMagic);
        }
        if buf[2] != VERSION {
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
        if checksum(&buf[..total]) != crc {
            return Err(RecordError::BadChecksum);
        }
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
            body: &buf[HEADER_LEN..total],
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
    crc32c::crc32c_append(crc32c::crc32c(&rec[2..8]), &rec[12..])
}

/// Writes a record into `out`, which must be exactly `HEADER_LEN + body.len()`
/// bytes long. Returns the number of bytes written.
pub fn encode_into(out: &mut [u8], seq: u64, meta: &RecordMeta, body: &[u8]) -> usize {
    let total = HEADER_LEN + body.len();
    debug_assert_eq!(out.len(), total);
    out[0..2].copy_from_slice(&MAGIC);
    out[2] = VERSION;
    out[3] = meta.flags;
    out[4..8].copy_from_slice(&(body.len() as u32).to_le_bytes());
    out[12..20].copy_from_slice(&seq.to_le_bytes());
    out[20..28].copy_from_slice(&meta.timestamp_ms.to_le_bytes());
    out[28..36].copy_from_slice(&meta.received_ms.to_le_bytes());
    out[36] = meta.severity.to_byte();
    out[37] = meta.category;
    out[38..40].copy_from_slice(&[0, 0]);
    out[40..44].copy_from_slice(&meta.tenant_hash.to_le_bytes());
    out[HEADER_LEN..total].copy_from_slice(body);
    let crc = checksum(&out[..total]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    total
}

/// Encodes a record into a fresh vector (tests, tools; the ring writes in place).
pub fn encode_to_vec(seq: u64, meta: &RecordMeta, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; HEADER_LEN + body.len()];
    encode_into(&mut v, seq, meta, body);
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
    fn every_single_bit_flip_is_detected() {
        let v = encode_to_vec(7, &meta(), b"{\"message\":\"hello\"}");
        for i in 0..v.len() {
            for bit in 0..8 {
                let mut c = v.clone();
                c[i] ^= 1 << bit;
                if let Ok(r) = Record::decode(&c) {
                    panic!("flip at {i}.{bit} accepted: {r:?}");
                }
            }
        }
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
