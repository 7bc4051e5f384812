//! Event ids: `evt_` and a ULID (48-bit millisecond time, 80 random bits),
//! made without allocating and, within one thread, strictly increasing.

use super::now_millis;

thread_local! {
    /// The (millisecond, random part) of this thread's last ULID.
    static LAST_ULID: std::cell::Cell<(u64, u128)> = const { std::cell::Cell::new((0, 0)) };
}

/// `evt_` followed by a fresh ULID: 48-bit millisecond time and 80 random
/// bits. Like the ULID spec's monotonic generator, ids made by one thread in
/// the same millisecond take the previous random part plus one (so they are
/// distinct and ordered), and a new millisecond draws fresh random bits from
/// the thread-local CSPRNG: one draw per millisecond instead of per id.
pub fn new_event_id() -> String {
    let mut buf = [0u8; EVENT_ID_LEN];
    String::from(write_event_id(&mut buf))
}

/// Length of an [`new_event_id`] id: `evt_` and 26 ULID characters.
pub const EVENT_ID_LEN: usize = 4 + ulid::ULID_LEN;

/// [`new_event_id`] written into `buf`, without allocating.
pub fn write_event_id(buf: &mut [u8; EVENT_ID_LEN]) -> &str {
    // Every byte is `evt_` or from the Crockford alphabet, so this cannot
    // fail; the check is what a safe `&str` costs (about 100 instructions).
    std::str::from_utf8(write_event_id_bytes(buf)).expect("ASCII event id")
}

/// [`write_event_id`] as bytes, without the UTF-8 check: all ASCII
/// (`evt_` and Crockford base32), nothing a JSON string needs escaped.
pub fn write_event_id_bytes(buf: &mut [u8; EVENT_ID_LEN]) -> &[u8] {
    write_event_id_bytes_at(now_millis(), buf)
}

/// [`write_event_id_bytes`] for an event stamped `ms` (its receive time),
/// which the caller has already read from the clock: ingest reads it once
/// per read of a connection, not once per event. An `ms` below this thread's
/// last id's time (a read parsed after a later one) takes that later time,
/// so the thread's ids stay distinct and increasing.
pub fn write_event_id_bytes_at(ms: i64, buf: &mut [u8; EVENT_ID_LEN]) -> &[u8] {
    const RAND_MAX: u128 = (1 << 80) - 1;
    let (last_ms, last_random) = LAST_ULID.get();
    let ms = u64::try_from(ms).unwrap_or(0).max(last_ms);
    let random = if ms == last_ms && last_random < RAND_MAX {
        last_random + 1
    } else {
        fresh_random()
    };
    LAST_ULID.set((ms, random));
    buf[..4].copy_from_slice(b"evt_");
    encode_ulid(ms, random, &mut buf[4..]);
    buf
}

/// 80 fresh random bits: once a millisecond, out of line.
#[cold]
#[inline(never)]
fn fresh_random() -> u128 {
    rand::random::<u128>() & ((1 << 80) - 1)
}

/// Crockford base32 (the ULID alphabet), two characters per 10-bit value.
const ULID_PAIRS: [[u8; 2]; 1024] = {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut t = [[0u8; 2]; 1024];
    let mut i = 0;
    while i < 1024 {
        t[i] = [ALPHABET[i >> 5], ALPHABET[i & 31]];
        i += 1;
    }
    t
};

/// The 26 characters of `ulid::Ulid::from_parts(ms, random)`: the 48-bit
/// time as 10 characters (50 bits, the top two 0), then the 80 random bits
/// as 16, most significant first; 13 table lookups instead of 26 shifts of
/// a `u128`.
fn encode_ulid(ms: u64, random: u128, out: &mut [u8]) {
    let out: &mut [u8; ulid::ULID_LEN] = out.try_into().expect("26 bytes");
    let pair = |v: u64| ULID_PAIRS[(v & 1023) as usize];
    let time = ms & ((1 << 48) - 1);
    let hi = (random >> 40) as u64 & ((1 << 40) - 1);
    let lo = random as u64 & ((1 << 40) - 1);
    let pairs = [
        pair(time >> 40),
        pair(time >> 30),
        pair(time >> 20),
        pair(time >> 10),
        pair(time),
        pair(hi >> 30),
        pair(hi >> 20),
        pair(hi >> 10),
        pair(hi),
        pair(lo >> 30),
        pair(lo >> 20),
        pair(lo >> 10),
        pair(lo),
    ];
    for (dst, p) in out.chunks_exact_mut(2).zip(pairs) {
        dst.copy_from_slice(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The table encoder writes what the ulid crate writes.
        #[test]
        fn ulid_encoding_matches_ulid_crate(
            ms in proptest::prelude::any::<u64>(),
            random in proptest::prelude::any::<u128>(),
        ) {
            let random = random & ((1 << 80) - 1);
            let mut ours = [0u8; ulid::ULID_LEN];
            encode_ulid(ms, random, &mut ours);
            let theirs = ulid::Ulid::from_parts(ms, random).to_string();
            proptest::prop_assert_eq!(&ours[..], theirs.as_bytes());
        }
    }

    #[test]
    fn ulid_encoding_edges() {
        for (ms, random) in [
            (0, 0),
            ((1 << 48) - 1, (1 << 80) - 1),
            (u64::MAX, (1 << 80) - 1),
            (1 << 47, 1 << 79),
            (1_790_000_000_000, 0x0123_4567_89ab_cdef_0123),
        ] {
            let mut ours = [0u8; ulid::ULID_LEN];
            encode_ulid(ms, random, &mut ours);
            assert_eq!(
                &ours[..],
                ulid::Ulid::from_parts(ms, random).to_string().as_bytes()
            );
        }
    }

    #[test]
    fn event_ids_are_crockford_base32_and_monotonic() {
        const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let mut parts: Vec<(u64, u128)> = Vec::new();
        for i in 0..20_000 {
            let mut buf = [0u8; EVENT_ID_LEN];
            let id: &[u8] = if i % 2 == 0 {
                write_event_id(&mut buf).as_bytes()
            } else {
                write_event_id_bytes(&mut buf)
            };
            assert_eq!(id.len(), 30);
            assert_eq!(&id[..4], b"evt_");
            assert!(id[4..].iter().all(|c| CROCKFORD.contains(c)), "{id:?}");
            // The first character holds the top 3 of 50 time bits (48 used).
            assert!(id[4] <= b'7', "{id:?}");
            let u = ulid::Ulid::from_string(std::str::from_utf8(&id[4..]).unwrap()).unwrap();
            parts.push((u.timestamp_ms(), u.random()));
        }
        for w in parts.windows(2) {
            let ((pms, prandom), (ms, random)) = (w[0], w[1]);
            assert!((ms, random) > (pms, prandom), "{w:?}");
            if ms == pms {
                // within a millisecond: the previous random part plus one
                assert_eq!(random, prandom + 1, "{w:?}");
            }
        }
        // Several milliseconds passed, each with fresh random bits.
        let firsts: Vec<u128> = parts
            .windows(2)
            .filter(|w| w[0].0 != w[1].0)
            .map(|w| w[1].1)
            .collect();
        let distinct: std::collections::HashSet<&u128> = firsts.iter().collect();
        assert_eq!(distinct.len(), firsts.len());
    }

    #[test]
    fn an_event_id_takes_the_given_time_and_never_goes_back() {
        let time_of = |ms: i64| {
            let mut buf = [0u8; EVENT_ID_LEN];
            let id = write_event_id_bytes_at(ms, &mut buf);
            let u = ulid::Ulid::from_string(std::str::from_utf8(&id[4..]).unwrap()).unwrap();
            (u.timestamp_ms(), u.random())
        };
        // On a thread of its own, so no earlier id of this thread is later.
        std::thread::spawn(move || {
            let t = 1_795_000_000_000;
            assert_eq!(time_of(t).0, t as u64);
            let (ms, r) = time_of(t + 5);
            assert_eq!(ms, t as u64 + 5);
            // a read parsed after a later one: the later time, the next id
            assert_eq!(time_of(t + 2), (ms, r + 1));
            assert_eq!(time_of(t + 9).0, t as u64 + 9);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn event_ids_are_unique_and_well_formed() {
        let ids: Vec<String> = (0..10_000).map(|_| new_event_id()).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids[..10] {
            assert_eq!(id.len(), 30);
            let ulid = ulid::Ulid::from_string(&id[4..]).unwrap();
            let age = now_millis() - ulid.timestamp_ms() as i64;
            assert!((0..60_000).contains(&age), "ULID time is now: {id}");
        }
        // Within one thread, ids are strictly increasing (monotonic ULIDs).
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // Other threads draw their own random parts.
        let other: Vec<String> =
            std::thread::spawn(|| (0..10_000).map(|_| new_event_id()).collect())
                .join()
                .unwrap();
        let all: std::collections::HashSet<&String> = ids.iter().chain(&other).collect();
        assert_eq!(all.len(), 20_000);
    }
}
