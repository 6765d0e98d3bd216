//! FINGERPRINT computation (RFC 5389 §15.5): CRC-32 as in ISO/IEC 13239
//! (the zlib / Ethernet polynomial, reflected, initial value and final XOR
//! all-ones), XORed with the constant `0x5354554e` ("STUN").
//!
//! The table is built at compile time; computing a checksum never allocates.

/// XOR constant that distinguishes a STUN fingerprint from a plain CRC-32.
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;

const POLYNOMIAL_REFLECTED: u32 = 0xEDB8_8320;

const TABLE: [u32; 256] = build_table();

const fn build_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut crc = index as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[index] = crc;
        index += 1;
    }
    table
}

/// CRC-32 (ISO HDLC) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let crc = bytes.iter().fold(u32::MAX, |crc, &byte| {
        TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8)
    });
    !crc
}

/// The FINGERPRINT value for a message whose bytes before the attribute are
/// `bytes` (with the header length already covering the fingerprint).
pub fn fingerprint(bytes: &[u8]) -> u32 {
    crc32(bytes) ^ FINGERPRINT_XOR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
