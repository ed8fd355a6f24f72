//! UTF-8 validation of bytes read from a segment (string values, field names).
//!
//! Hosts use `core::str::from_utf8`, which is fast on long strings. Bare-metal targets
//! use [`is_utf8`], a byte loop that accepts exactly the same inputs in a fraction of the
//! flash (about 100 bytes against 370 on Cortex-M; docs/EMBEDDED.md). Both are tested
//! against each other on the host.

/// `b` as a `&str` if it is valid UTF-8.
#[cfg(not(target_os = "none"))]
#[inline]
pub(crate) fn to_str(b: &[u8]) -> Option<&str> {
    core::str::from_utf8(b).ok()
}

/// `b` as a `&str` if it is valid UTF-8.
#[cfg(target_os = "none")]
pub(crate) fn to_str(b: &[u8]) -> Option<&str> {
    if is_utf8(b) {
        // SAFETY: `is_utf8` accepts exactly the byte strings `core::str::from_utf8` accepts
        // (RFC 3629: shortest forms, no surrogates, nothing above U+10FFFF; the tests
        // below compare the two on every sequence of up to three bytes and on every
        // four-byte sequence with a valid lead byte).
        Some(unsafe { core::str::from_utf8_unchecked(b) })
    } else {
        None
    }
}

/// True if `b` is valid UTF-8 (RFC 3629).
#[cfg_attr(not(any(target_os = "none", test)), allow(dead_code))]
pub(crate) fn is_utf8(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        let lead = b[i] as u32;
        i += 1;
        if lead < 0x80 {
            continue;
        }
        // C0 and C1 can only start overlong forms, F5..FF nothing; 80..BF continue.
        if !(0xC2..=0xF4).contains(&lead) {
            return false;
        }
        // Continuation bytes after the lead byte, and the smallest code point that
        // needs that many (anything smaller is an overlong form).
        let (n, min) = if lead >= 0xF0 {
            (3, 0x1_0000)
        } else if lead >= 0xE0 {
            (2, 0x800)
        } else {
            (1, 0x80)
        };
        let mut cp = lead & (0x3F >> n);
        for _ in 0..n {
            match b.get(i) {
                Some(&c) if c & 0xC0 == 0x80 => cp = (cp << 6) | (c & 0x3F) as u32,
                _ => return false,
            }
            i += 1;
        }
        if cp < min || cp > 0x10_FFFF || (0xD800..=0xDFFF).contains(&cp) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::is_utf8;

    fn same(b: &[u8]) {
        assert_eq!(
            is_utf8(b),
            core::str::from_utf8(b).is_ok(),
            "disagreement on {b:02x?}"
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "16 M sequences: minutes under Miri; the logic has no unsafe code"
    )]
    fn agrees_with_core_on_every_sequence_of_up_to_three_bytes() {
        same(&[]);
        for a in 0..=255u8 {
            same(&[a]);
            for b in 0..=255u8 {
                same(&[a, b]);
                for c in 0..=255u8 {
                    same(&[a, b, c]);
                }
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "1.3 M sequences: minutes under Miri")]
    fn agrees_with_core_on_four_byte_sequences() {
        // Every lead byte of a four-byte form (and its neighbours), followed by three
        // bytes from the continuation range and around it.
        let around: Vec<u8> = (0x70..=0xC8).collect();
        for a in 0xEE..=0xF7u8 {
            for &b in &around {
                for &c in &around {
                    for &d in &around {
                        same(&[a, b, c, d]);
                    }
                }
            }
        }
    }

    #[test]
    fn agrees_with_core_on_mixed_text() {
        for s in [
            "",
            "OK",
            "naïve café",
            "温度 23.5 °C",
            "🎉🚀👍🏽🇩🇪",
            "a\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}",
        ] {
            assert!(is_utf8(s.as_bytes()));
            let b = s.as_bytes();
            for cut in 0..b.len() {
                same(&b[..cut]);
                let mut flipped = b.to_vec();
                flipped[cut] ^= 0x40;
                same(&flipped);
            }
        }
    }
}
