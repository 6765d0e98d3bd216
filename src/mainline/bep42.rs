//! BEP 42 node IDs: the first 21 bits of a Mainline node ID tied to its
//! public IPv4 address by CRC-32C, so storing nodes can tell a node that
//! chose its ID near a target from one that did not.

use std::net::Ipv4Addr;

use super::krpc::{ID_LEN, Id};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as BEP 42 uses.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The first 21 bits BEP 42 derives from `ip` and the ID's last byte `r`.
fn bep42_prefix(ip: Ipv4Addr, r: u8) -> u32 {
    let masked = (u32::from(ip) & 0x030f_3fff) | (u32::from(r) << 29);
    crc32c(&masked.to_be_bytes())
}

/// `id` made valid for `ip` under BEP 42: the first 21 bits from the CRC
/// of the masked address and the last byte, the other bits kept.
pub fn bep42_id(ip: Ipv4Addr, mut id: Id) -> Id {
    let crc = bep42_prefix(ip, id[ID_LEN - 1]);
    id[0] = (crc >> 24) as u8;
    id[1] = (crc >> 16) as u8;
    id[2] = ((crc >> 8) as u8 & 0xf8) | (id[2] & 0x07);
    id
}

/// True if `id` is valid for `ip` under BEP 42 (first 21 bits).
pub fn bep42_valid(ip: Ipv4Addr, id: &Id) -> bool {
    let crc = bep42_prefix(ip, id[ID_LEN - 1]);
    id[0] == (crc >> 24) as u8
        && id[1] == (crc >> 16) as u8
        && id[2] & 0xf8 == (crc >> 8) as u8 & 0xf8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep42_ids_match_the_beps_vectors() {
        // BEP 42's table: IP, rand (the ID's last byte), the first bytes.
        let vectors = [
            ("124.31.75.21", 1u8, [0x5f, 0xbf, 0xbf]),
            ("21.75.31.124", 86, [0x5a, 0x3c, 0xe9]),
            ("65.23.51.170", 22, [0xa5, 0xd4, 0x32]),
            ("84.124.73.14", 65, [0x1b, 0x03, 0x21]),
            ("43.213.53.83", 90, [0xe5, 0x6f, 0x6c]),
        ];
        for (ip, r, prefix) in vectors {
            let ip: Ipv4Addr = ip.parse().unwrap();
            let mut id = [0u8; 20];
            id[2] = prefix[2] & 0x07;
            id[19] = r;
            let id = bep42_id(ip, id);
            assert_eq!(id[..3], prefix, "{ip}");
            assert!(bep42_valid(ip, &id));
            assert!(!bep42_valid("198.51.100.1".parse().unwrap(), &id));
        }
    }
}
