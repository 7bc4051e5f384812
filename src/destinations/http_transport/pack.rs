//! Packing a batch's encoded entries into request bodies within a
//! vendor's limits (entries per request, bytes per request, bytes per
//! entry), in order, refusing an entry that can never fit.

use super::EncodedRequest;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

/// How entries are joined into one body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `[a,b,c]`
    JsonArray,
    /// `a\nb\nc\n`
    Lines,
}

/// A vendor's per-request limits (bytes are uncompressed body bytes).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_entries: usize,
    pub max_bytes: usize,
    /// Largest single entry.
    pub max_entry_bytes: usize,
}

impl Limits {
    pub const NONE: Limits = Limits {
        max_entries: usize::MAX,
        max_bytes: usize::MAX,
        max_entry_bytes: usize::MAX,
    };
}

/// One packed body and the batch indices of its entries.
pub type Packed = (Bytes, Vec<usize>);

/// One POST to `url` with `headers` per packed body (what most formats send).
pub fn posts(
    url: &str,
    headers: &[(HeaderName, HeaderValue)],
    bodies: Vec<Packed>,
) -> Vec<EncodedRequest> {
    bodies
        .into_iter()
        .map(|(body, indices)| EncodedRequest {
            method: Method::POST,
            url: url.to_string(),
            headers: headers.to_vec(),
            body,
            indices,
        })
        .collect()
}

/// Packs pre-encoded entries (batch index, bytes) into bodies within
/// `limits`, in order. An entry too large to ever fit is refused with
/// `too_large(entry_len)` as the reason instead of being sent. For tests:
/// the destinations push each entry into a [`Packer`] as they write it.
#[cfg(test)]
pub fn pack(
    entries: Vec<(usize, Vec<u8>)>,
    framing: Framing,
    limits: Limits,
    too_large: impl Fn(usize, usize) -> String,
) -> (Vec<Packed>, Vec<(usize, String)>) {
    let mut packer = Packer::new(framing, limits);
    for (i, entry) in entries {
        packer.push(i, &entry, &too_large);
    }
    packer.finish()
}

/// `pack` (the tests' all-at-once form) one entry at a time, for formats that encode each entry into a
/// reused scratch buffer (or pass the record body through) instead of
/// allocating a `Vec` per entry. Same bodies, same refusals.
#[derive(Debug)]
pub struct Packer {
    framing: Framing,
    limits: Limits,
    out: Vec<Packed>,
    rejected: Vec<(usize, String)>,
    body: Vec<u8>,
    idx: Vec<usize>,
}

impl Packer {
    pub fn new(framing: Framing, limits: Limits) -> Self {
        Packer {
            framing,
            limits,
            out: Vec::new(),
            rejected: Vec::new(),
            body: Vec::new(),
            idx: Vec::new(),
        }
    }

    fn open_close_sep(&self) -> (&'static [u8], &'static [u8], &'static [u8]) {
        match self.framing {
            Framing::JsonArray => (b"[", b"]", b","),
            Framing::Lines => (b"", b"", b"\n"),
        }
    }

    fn flush(&mut self) {
        if self.idx.is_empty() {
            return;
        }
        let (_, close, _) = self.open_close_sep();
        if self.framing == Framing::Lines {
            self.body.push(b'\n');
        }
        self.body.extend_from_slice(close);
        self.out.push((
            Bytes::from(std::mem::take(&mut self.body)),
            std::mem::take(&mut self.idx),
        ));
    }

    /// Adds entry `i`, or refuses it with `too_large(entry.len(), alone)`,
    /// `alone` the size of a body of this entry alone (framing included).
    /// Both limits are inclusive: a body of exactly `max_bytes` is sent.
    pub fn push(&mut self, i: usize, entry: &[u8], too_large: impl Fn(usize, usize) -> String) {
        let (open, close, sep) = self.open_close_sep();
        // what `flush` ends a body with: the closing bracket, or the last newline
        let trailer = close.len() + usize::from(self.framing == Framing::Lines);
        let alone = open.len() + entry.len() + trailer;
        if entry.len() > self.limits.max_entry_bytes || alone > self.limits.max_bytes {
            self.rejected.push((i, too_large(entry.len(), alone)));
            return;
        }
        let grown = self.body.len() + sep.len() + entry.len() + trailer;
        if !self.idx.is_empty()
            && (self.idx.len() >= self.limits.max_entries || grown > self.limits.max_bytes)
        {
            self.flush();
        }
        if self.idx.is_empty() {
            self.body.extend_from_slice(open);
        } else {
            self.body.extend_from_slice(sep);
        }
        self.body.extend_from_slice(entry);
        self.idx.push(i);
    }

    /// The packed bodies and the refused entries.
    pub fn finish(mut self) -> (Vec<Packed>, Vec<(usize, String)>) {
        self.flush();
        (self.out, self.rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_respects_limits_and_refuses_giants() {
        let entries: Vec<(usize, Vec<u8>)> = (0..7)
            .map(|i| (i, vec![b'a'; if i == 3 { 50 } else { 4 }]))
            .collect();
        let limits = Limits {
            max_entries: 2,
            max_bytes: 12,
            max_entry_bytes: 10,
        };
        let (bodies, rejected) = pack(entries, Framing::JsonArray, limits, |n, _| {
            format!("{n} bytes")
        });
        assert_eq!(rejected, vec![(3, "50 bytes".to_string())]);
        let idx: Vec<Vec<usize>> = bodies.iter().map(|b| b.1.clone()).collect();
        assert_eq!(idx, vec![vec![0, 1], vec![2, 4], vec![5, 6]]);
        assert_eq!(&bodies[0].0[..], b"[aaaa,aaaa]");
        for (b, _) in &bodies {
            assert!(b.len() <= 12);
        }
        let (bodies, _) = pack(
            vec![(0, b"x".to_vec()), (1, b"y".to_vec())],
            Framing::Lines,
            Limits::NONE,
            |_, _| String::new(),
        );
        assert_eq!(&bodies[0].0[..], b"x\ny\n");
    }

    /// `max_bytes` is inclusive: a body of exactly that many bytes is sent
    /// (one entry alone, or several), one byte more is not.
    #[test]
    fn a_body_of_exactly_max_bytes_is_allowed() {
        let limits = Limits {
            max_entries: usize::MAX,
            max_bytes: 10,
            max_entry_bytes: 10,
        };
        let too_large = |n: usize, alone: usize| format!("{n}/{alone}");
        for (framing, fits) in [(Framing::JsonArray, 8), (Framing::Lines, 9)] {
            let (bodies, rejected) = pack(
                vec![(0, vec![b'a'; fits]), (1, vec![b'b'; fits + 1])],
                framing,
                limits,
                too_large,
            );
            assert_eq!(bodies.len(), 1, "{framing:?}");
            assert_eq!(bodies[0].0.len(), 10, "{framing:?}");
            assert_eq!(bodies[0].1, vec![0], "{framing:?}");
            assert_eq!(
                rejected,
                vec![(1, format!("{}/11", fits + 1))],
                "{framing:?}"
            );
        }
        // two entries making exactly 10 bytes share a body: [aaa,bbbb] and aaaa\nbbbb\n
        for (framing, a, b) in [(Framing::JsonArray, 3, 4), (Framing::Lines, 4, 4)] {
            let (bodies, _) = pack(
                vec![(0, vec![b'a'; a]), (1, vec![b'b'; b]), (2, vec![b'c'])],
                framing,
                limits,
                too_large,
            );
            assert_eq!(bodies[0].0.len(), 10, "{framing:?}");
            assert_eq!(bodies[0].1, vec![0, 1], "{framing:?}");
            assert_eq!(bodies[1].1, vec![2], "{framing:?}");
        }
    }
}
