//! Meeting codes that resist guessing (`protocol-spec.md` §4.2): fresh
//! codes of [`GENERATED_WORDS`] words from a built-in list of 1024 short
//! English words (10 bits each, 70 bits in all), easy to read aloud and to
//! type, joined with `-` so a shell needs no quotes; and an estimate of
//! how many bits of guessing a code the user chose would take, so a weak
//! one can be warned about.
//!
//! The list (`codewords.txt`, one word a line, sorted) has words of 3–6
//! lowercase ASCII letters whose first four letters are unique, so a word
//! is known by its first four. Generation takes its randomness as an
//! argument: the core never reads the OS generator.

/// The built-in word list, one word a line, sorted.
const WORD_LIST: &str = include_str!("codewords.txt");
/// Words in the list: 2¹⁰.
pub const WORD_COUNT: usize = 1024;
/// Bits of one word drawn uniformly from the list.
pub const BITS_PER_WORD: u32 = 10;
/// Words in a generated code.
pub const GENERATED_WORDS: usize = 7;
/// Bits of a generated code.
pub const GENERATED_BITS: u32 = BITS_PER_WORD * GENERATED_WORDS as u32;
/// Random bytes [`generate`] takes: enough for [`GENERATED_BITS`].
pub const RANDOM_BYTES: usize = GENERATED_BITS.div_ceil(8) as usize;
/// Codes estimated below this many bits get a warning.
pub const WEAK_CODE_BITS: u32 = 50;

/// The word with index `index` (below [`WORD_COUNT`]).
fn word(index: usize) -> &'static str {
    WORD_LIST.lines().nth(index).unwrap_or_default()
}

/// True if `token` is one of the list's words.
fn in_list(token: &str) -> bool {
    WORD_LIST.lines().any(|w| w == token)
}

/// A fresh code from `random` (uniform random bytes): [`GENERATED_WORDS`]
/// words of the list, each from the next 10 bits, joined with `-`.
pub fn generate(random: &[u8; RANDOM_BYTES]) -> String {
    let mut bits = random
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let mut words = Vec::with_capacity(GENERATED_WORDS);
    for _ in 0..GENERATED_WORDS {
        words.push(word((bits % WORD_COUNT as u128) as usize));
        bits /= WORD_COUNT as u128;
    }
    words.join("-")
}

/// An estimate of the bits of guessing `code` takes, for a guesser who
/// knows how people choose codes (§4.2): the normalized code is split into
/// tokens at whitespace and `-`, `_`, `.`, `,`, `/`, `:`; a repeated token
/// counts once; a token from the list is 10 bits; digits 3.3 bits each; a
/// lowercase word of up to 12 letters with a vowel 12 bits (a common
/// dictionary word); any other token 4.7 bits per letter, 3.3 per digit and
/// 5 per other character. The estimate is the sum, rounded down.
pub fn estimate_bits(code: &str) -> u32 {
    let normalized = crate::meeting::normalize(code);
    let mut seen: Vec<&str> = Vec::new();
    let mut tenths = 0u32;
    for token in normalized.split(|c: char| c.is_whitespace() || "-_.,/:".contains(c)) {
        if token.is_empty() || seen.contains(&token) {
            continue;
        }
        seen.push(token);
        tenths += token_tenths(token);
    }
    tenths / 10
}

/// Tenths of bits of one token.
fn token_tenths(token: &str) -> u32 {
    let letters = token.chars().filter(|c| c.is_alphabetic()).count() as u32;
    let digits = token.chars().filter(char::is_ascii_digit).count() as u32;
    let others = token.chars().count() as u32 - letters - digits;
    let vowel = token.chars().any(|c| "aeiouy".contains(c));
    if in_list(token) {
        BITS_PER_WORD * 10
    } else if digits > 0 && letters == 0 && others == 0 {
        digits * 33
    } else if digits == 0 && others == 0 && vowel && letters <= 12 {
        120
    } else {
        letters * 47 + digits * 33 + others * 50
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_has_1024_sorted_short_words_known_by_their_first_four_letters() {
        let words: Vec<&str> = WORD_LIST.lines().collect();
        assert_eq!(words.len(), WORD_COUNT);
        assert!(words.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert!(
            words
                .iter()
                .all(|w| (3..=6).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase()))
        );
        let mut prefixes: Vec<&str> = words.iter().map(|w| &w[..w.len().min(4)]).collect();
        prefixes.dedup();
        assert_eq!(prefixes.len(), WORD_COUNT);
    }

    #[test]
    fn generated_codes_have_seventy_bits_and_use_every_bit() {
        const { assert!(GENERATED_BITS >= 64) };
        let zero = generate(&[0; RANDOM_BYTES]);
        assert_eq!(zero, ["able"; GENERATED_WORDS].join("-"));
        let mut one = [0; RANDOM_BYTES];
        one[RANDOM_BYTES - 1] = 1;
        assert!(generate(&one).starts_with("acid-able"));
        // The highest bit used (the 70th) changes the last word.
        let mut high = [0; RANDOM_BYTES];
        high[0] = 0b0010_0000;
        assert_ne!(generate(&high), zero);
        let code = generate(&[0x3c, 0x91, 0x5e, 0x07, 0xd2, 0x6b, 0xa8, 0x14, 0xf3]);
        assert_eq!(code.split('-').count(), GENERATED_WORDS);
        assert!(
            estimate_bits(&code) >= 64,
            "{code}: {}",
            estimate_bits(&code)
        );
        assert_eq!(crate::meeting::normalize(&code), code, "already normal");
    }

    #[test]
    fn chosen_codes_are_estimated_as_a_guesser_would() {
        assert_eq!(estimate_bits("blue fox"), 20, "two listed words");
        assert_eq!(estimate_bits("red panda sunrise"), 32);
        assert!(estimate_bits("purple otter seventeen") < WEAK_CODE_BITS);
        assert!(estimate_bits("1234") < 14);
        assert_eq!(
            estimate_bits("fox fox fox fox fox"),
            10,
            "repeats count once"
        );
        assert!(estimate_bits("demo-3f9a27c1e8b4") >= WEAK_CODE_BITS);
        assert!(estimate_bits("Xk9#qL2!vB7$mR4@") >= 64);
    }
}
