//! Byte-string helpers for the per-line path, a word (eight bytes) at a time: log fields and
//! keys are a few bytes long, shorter than what memchr's and memcmp's setup and calls cost.

/// `haystack.find(literal)` for the short literals of log formats: a byte search for the first
/// byte, then a compare of the rest (the general two-way searcher costs more to set up than these
/// lines take). Inlined: it runs for every field of every line, and the call cost as much as it.
#[inline(always)]
pub fn find_literal(haystack: &str, literal: &str) -> Option<usize> {
    let (hay, lit) = (haystack.as_bytes(), literal.as_bytes());
    let (&first, tail) = lit.split_first()?;
    let mut from = 0;
    while let Some(i) = find_byte(&hay[from..], first) {
        let at = from + i;
        // Most literals are one byte, the rest two or three: a plain loop beats a call to memcmp.
        let after = &hay[at + 1..];
        if after.len() >= tail.len() && tail.iter().zip(after).all(|(a, b)| a == b) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// `memchr` with a head start: most fields of a log line are under 32 bytes long, and their end
/// is found in the first four eight-byte words, each read as one number, without memchr's call
/// and setup.
#[inline(always)]
pub fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    let mut from = 0;
    while let Some(word) = hay.get(from..).and_then(|rest| rest.first_chunk::<8>()) {
        let matches = bytes_equal_to(u64::from_le_bytes(*word), byte);
        if matches != 0 {
            return Some(from + matches.trailing_zeros() as usize / 8);
        }
        from += 8;
        if from == 32 {
            break;
        }
    }
    memchr::memchr(byte, &hay[from..]).map(|i| i + from)
}

/// The high bit of each byte of `word` that equals `byte`: none is 0. Any flag means some byte
/// matched, and the lowest flag is always a true match (a borrow can only flag bytes above it).
#[inline(always)]
pub fn bytes_equal_to(word: u64, byte: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = word ^ (u64::from(byte) * ONES);
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// `a == b`, eight bytes at a time (the last word overlapping the one before), four, or one:
/// keys are short, and a call to memcmp (its size dispatch, its call) cost more than this.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| s[at..].first_chunk::<8>().map(|w| u64::from_le_bytes(*w));
    let half = |s: &[u8], at: usize| s[at..].first_chunk::<4>().map(|w| u32::from_le_bytes(*w));
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if word(a, at) != word(b, at) {
                return false;
            }
            at += 8;
        }
        word(a, n - 8) == word(b, n - 8)
    } else if n >= 4 {
        half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_search_finds_what_memchr_finds() {
        // Every length and position around the eight-byte word, with bytes that carry and borrow.
        let alphabet = [b' ', b'!', 0x00, 0x80, 0xff, 0x7f, b'a'];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..72 {
            for _ in 0..50 {
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                for byte in alphabet {
                    assert_eq!(find_byte(&hay, byte), memchr::memchr(byte, &hay), "{byte} in {hay:?}");
                }
            }
        }
    }

    #[test]
    fn bytes_compare_as_slices_at_every_length() {
        // Every length through two and a half words, equal and differing at each byte.
        for n in 0..=20 {
            let a: Vec<u8> = (0..n).map(|i| b'a' + i as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 1;
                assert!(!same_bytes(&a, &b), "{n} bytes, differing at {at}");
            }
            assert!(!same_bytes(&a, &[a.as_slice(), b"x"].concat()), "{n}: a longer key is another");
        }
    }

    #[test]
    fn literals_are_found_near_and_far() {
        let far = format!("{}\" 200", "x".repeat(40));
        assert_eq!(find_literal(&far, "\" "), Some(40));
        assert_eq!(find_literal("ab\" \"c", "\" "), Some(2));
        assert_eq!(find_literal(&"y".repeat(40), "\" "), None);
    }
}
