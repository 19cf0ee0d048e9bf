//! Code point classes as llama.cpp's tokenizer sees them, and GPT-2's byte <-> character mapping.
//!
//! llama.cpp classifies a code point by its Unicode general-category group (`\p{L}`, `\p{N}`, ...)
//! from Unicode 15.1 tables, and whitespace by the `White_Space` property. Rust's `char` methods do
//! not match those groups (`is_alphabetic` also takes marks and letter numbers), so letters,
//! numbers and punctuation come from our own table; whitespace is `White_Space` in both.

use super::unicode_table::CATEGORY_RANGES;

/// General-category group of a code point (`Undefined` = unassigned, `Cn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Category {
    Undefined,
    Number,
    Letter,
    Separator,
    Mark,
    Punctuation,
    Symbol,
    Control,
}

pub(crate) fn category(c: char) -> Category {
    let cp = c as u32;
    // The table starts at 0, so the range holding `cp` is the last start <= cp.
    let i = CATEGORY_RANGES.partition_point(|&(start, _)| start <= cp);
    CATEGORY_RANGES[i.saturating_sub(1)].1
}

pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    category(c) == Category::Letter
}

pub(crate) fn is_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    category(c) == Category::Number
}

pub(crate) fn is_punctuation(c: char) -> bool {
    category(c) == Category::Punctuation
}

/// `White_Space`: the same 25 code points as llama.cpp's whitespace set.
pub(crate) fn is_whitespace(c: char) -> bool {
    c.is_whitespace()
}

/// GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes
/// (controls, space, DEL, NBSP, soft hyphen) map in order to U+0100.. so every byte is a visible char.
const fn is_self_mapped(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF)
}

const BYTE_TO_CHAR: [char; 256] = {
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let cp = if is_self_mapped(b as u8) {
            b as u32
        } else {
            shifted += 1;
            255 + shifted
        };
        table[b] = match char::from_u32(cp) {
            Some(c) => c,
            None => '\0',
        };
        b += 1;
    }
    table
};

/// The 68 bytes that map above U+00FF, in order: `SHIFTED_BYTES[c - 0x100]`.
const SHIFTED_BYTES: [u8; 68] = {
    let mut table = [0u8; 68];
    let mut n = 0usize;
    let mut b = 0usize;
    while b < 256 {
        if !is_self_mapped(b as u8) {
            table[n] = b as u8;
            n += 1;
        }
        b += 1;
    }
    table
};

pub(crate) fn byte_to_char(b: u8) -> char {
    BYTE_TO_CHAR[b as usize]
}

pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let cp = c as u32;
    if cp < 256 && is_self_mapped(cp as u8) {
        return Some(cp as u8);
    }
    SHIFTED_BYTES.get(cp.checked_sub(0x100)? as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_mapping_round_trips_all_256_bytes() {
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b), "byte {b:#04x}");
        }
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'A'), 'A');
        assert_eq!(char_to_byte('\u{0144}'), None, "past the 68 shifted bytes");
    }

    #[test]
    fn categories_follow_general_category_not_alphabetic() {
        assert!(is_letter('é') && is_letter('日') && is_letter('ß'));
        // Devanagari vowel sign AA is alphabetic in Rust but a mark (\p{M}) for llama.cpp.
        assert!('\u{093E}'.is_alphabetic() && !is_letter('\u{093E}'));
        // Roman numeral one is a letter number: \p{N}, not \p{L}.
        assert!(is_number('\u{2160}') && !is_letter('\u{2160}'));
        assert!(is_number('²') && is_number('٣'));
        assert!(is_punctuation('—') && is_punctuation('!') && !is_punctuation('$'));
        assert_eq!(category('\u{0378}'), Category::Undefined);
        assert_eq!(category('\u{10FFFF}'), Category::Undefined);
        assert_eq!(category('🙂'), Category::Symbol);
        assert!(is_whitespace('\u{3000}') && is_whitespace('\u{85}') && !is_whitespace('\u{200B}'));
    }
}
