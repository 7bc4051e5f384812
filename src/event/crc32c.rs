//! CRC32C (Castagnoli), the records' checksum, as fast for a record of a
//! few hundred bytes as for a long buffer.
//!
//! The `crc32c` crate runs a single chain of SSE 4.2 `crc32` instructions
//! for buffers under 768 bytes, and a record is usually 500–900 bytes. Each
//! instruction waits for the one before it (3 cycles), so such a record
//! costs ~100 ns to checksum when written and again when first read. Here a
//! buffer is cut into three equal streams run side by side, which the CPU
//! overlaps, and the three results are joined with two carry-less
//! multiplications (PCLMULQDQ) by constants from a table built at compile
//! time. At 700 bytes that is ~2.3× faster (`cargo bench --bench ring --
//! record_checksum`).
//!
//! It is the project's one CRC32C: records, segment headers and tenant
//! hashes all go through it. The crate stays the reference the tests and
//! the `crc32c` fuzz target hold this to, and the fallback on CPUs without
//! SSE 4.2 and PCLMULQDQ and on other architectures.

/// The CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    append(0, data)
}

/// The CRC32C of the bytes whose CRC32C is `crc` followed by `data` (what
/// `crc32c::crc32c_append` returns).
pub fn append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2")
        && std::arch::is_x86_feature_detected!("pclmulqdq")
    {
        // SAFETY: `three_streams` needs SSE 4.2 and PCLMULQDQ, and this CPU
        // has both (checked just above); it reads `data` through safe slices only.
        return unsafe { x86::three_streams(crc, data) };
    }
    ::crc32c::crc32c_append(crc, data)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        _mm_clmulepi64_si128, _mm_crc32_u64, _mm_crc32_u8, _mm_cvtsi128_si64, _mm_cvtsi64_si128,
    };

    /// The CRC32C polynomial, bit-reflected.
    const POLY: u32 = 0x82F6_3B78;

    /// The longest stream, in 8-byte words: longer buffers are taken in
    /// blocks of three such streams.
    const MAX_WORDS: usize = 256;

    /// `SHIFT[w]`: x^(64·w − 33) mod P, bit-reflected, for w in
    /// 1..=2·MAX_WORDS. Multiplying a CRC state by it carry-less and
    /// reducing the product with one `crc32` instruction (which multiplies
    /// by x^32; the reflected product adds one more x) gives the state
    /// after w words of zeros: how far a stream's result must move to sit
    /// where the streams after it end.
    static SHIFT: [u32; 2 * MAX_WORDS + 1] = {
        let mut table = [0u32; 2 * MAX_WORDS + 1];
        // x^0, reflected, and its power
        let mut v: u32 = 0x8000_0000;
        let mut power: usize = 0;
        let mut w = 1;
        while w <= 2 * MAX_WORDS {
            while power < 64 * w - 33 {
                // times x, mod P
                v = (v >> 1) ^ if v & 1 == 1 { POLY } else { 0 };
                power += 1;
            }
            table[w] = v;
            w += 1;
        }
        table
    };

    /// The state `state` moved past `w` words of zeros (see [`SHIFT`]).
    #[inline]
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    fn shift(state: u64, w: usize) -> u64 {
        let product = _mm_clmulepi64_si128(
            _mm_cvtsi64_si128(state as i64),
            _mm_cvtsi64_si128(i64::from(SHIFT[w])),
            0,
        );
        _mm_crc32_u64(0, _mm_cvtsi128_si64(product) as u64)
    }

    #[inline]
    fn word(bytes: &[u8], i: usize) -> u64 {
        u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap())
    }

    /// [`append`](super::append) with three `crc32` chains side by side
    /// (one chain for the bytes left over, and for buffers under 96 bytes,
    /// too short for three to pay).
    #[target_feature(enable = "sse4.2,pclmulqdq")]
    pub(super) fn three_streams(crc: u32, data: &[u8]) -> u32 {
        let mut state = u64::from(!crc);
        let mut rest = data;
        loop {
            let w = (rest.len() / 24).min(MAX_WORDS);
            if w < 4 {
                break;
            }
            let (a, tail) = rest.split_at(8 * w);
            let (b, tail) = tail.split_at(8 * w);
            let (c, tail) = tail.split_at(8 * w);
            let (mut sb, mut sc) = (0u64, 0u64);
            for i in 0..w {
                state = _mm_crc32_u64(state, word(a, i));
                sb = _mm_crc32_u64(sb, word(b, i));
                sc = _mm_crc32_u64(sc, word(c, i));
            }
            state = shift(state, 2 * w) ^ shift(sb, w) ^ sc;
            rest = tail;
        }
        let mut words = rest.chunks_exact(8);
        for chunk in &mut words {
            state = _mm_crc32_u64(state, u64::from_le_bytes(chunk.try_into().unwrap()));
        }
        let mut state = state as u32;
        for &byte in words.remainder() {
            state = _mm_crc32_u8(state, byte);
        }
        !state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// The comparisons below hold the three streams to the crate only where
    /// they run: on x86-64 with SSE 4.2 and PCLMULQDQ (the CI machines).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_three_streams_run_on_this_machine() {
        assert!(std::arch::is_x86_feature_detected!("sse4.2"));
        assert!(std::arch::is_x86_feature_detected!("pclmulqdq"));
    }

    #[test]
    fn matches_the_crate_at_every_length_and_offset() {
        let data = bytes(20_000, 7);
        // every length through several blocks of three full streams
        // (3 · 256 words = 6 KiB each), from aligned and unaligned starts
        for n in 0..13_000 {
            for start in [0, 3] {
                let d = &data[start..start + n];
                assert_eq!(crc32c(d), ::crc32c::crc32c(d), "length {n} at {start}");
            }
        }
        for n in [20_000 - 5, 8_191, 16_384] {
            let d = &data[..n];
            assert_eq!(crc32c(d), ::crc32c::crc32c(d), "length {n}");
        }
    }

    #[test]
    fn appends_like_the_crate() {
        let data = bytes(2_000, 11);
        for crc in [0, 1, 0xdead_beef, u32::MAX] {
            for n in [0, 5, 95, 96, 97, 700, 1_999] {
                assert_eq!(
                    append(crc, &data[..n]),
                    ::crc32c::crc32c_append(crc, &data[..n]),
                    "crc {crc:#x}, length {n}"
                );
            }
        }
        // split anywhere, the same as in one piece
        let whole = crc32c(&data);
        for at in [1, 100, 777, 1_500] {
            assert_eq!(
                append(crc32c(&data[..at]), &data[at..]),
                whole,
                "split at {at}"
            );
        }
    }

    #[test]
    fn known_answers() {
        // RFC 3720 (iSCSI), appendix B.4
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46dd_794e);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // long enough for the three streams
        assert_eq!(crc32c(&[0u8; 4096]), ::crc32c::crc32c(&[0u8; 4096]));
        assert_ne!(crc32c(&[0u8; 4096]), crc32c(&[0u8; 4095]));
    }

    #[test]
    fn a_flipped_bit_changes_it() {
        let mut data = bytes(700, 3);
        let before = crc32c(&data);
        for bit in [0, 8 * 233 + 5, 8 * 466 + 1, 8 * 699 + 7] {
            data[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(crc32c(&data), before, "bit {bit}");
            data[bit / 8] ^= 1 << (bit % 8);
        }
    }
}
