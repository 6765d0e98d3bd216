//! Bencode (BEP 3): a bounded, non-recursive decoder and a canonical
//! encoder, for the KRPC messages of the Mainline DHT.
//!
//! The decoder walks the input once with an explicit stack of open lists
//! and dicts, so hostile nesting cannot exhaust the call stack: at most
//! [`MAX_DEPTH`] open containers and [`MAX_ITEMS`] values in all
//! (libtorrent's limits for its DHT parser). Every value takes at least two
//! input bytes, so what it allocates is bounded by the input's length.
//! Strings borrow from the input.
//!
//! Integers must be canonical (`i0e`, no leading zeros, no `-0`) and so
//! must string lengths; anything else is an error. Dict keys out of order
//! or repeated are accepted (libtorrent treats them as a soft error) but
//! make [`Decoded::canonical`] false; lookups return the first match. The
//! encoder always writes canonical bencode: keys sorted as raw bytes.

use std::fmt;

/// Most containers open at once.
pub const MAX_DEPTH: usize = 10;
/// Most values (strings, integers, lists, dicts) in one input.
pub const MAX_ITEMS: usize = 500;
/// Most digits in an integer or a string length: enough for any `i64`.
const MAX_DIGITS: usize = 19;

/// A decoded bencode value; strings borrow from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// `i<n>e`.
    Int(i64),
    /// `<len>:<bytes>`.
    Bytes(&'a [u8]),
    /// `l...e`.
    List(Vec<Value<'a>>),
    /// `d...e`: keys with their values, in input order.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

/// A decoded input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The value.
    pub value: Value<'a>,
    /// True when every dict's keys were sorted and unique, so re-encoding
    /// gives the input back byte for byte.
    pub canonical: bool,
}

/// Why bytes are not one bencode value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    Truncated,
    /// A byte that cannot start a value here, at this offset.
    Unexpected(usize),
    /// More than [`MAX_DEPTH`] containers open.
    TooDeep,
    /// More than [`MAX_ITEMS`] values.
    TooManyItems,
    /// An integer that is not canonical or does not fit an `i64`.
    BadInteger,
    /// A string length that is not canonical.
    BadLength,
    /// Bytes after the value.
    TrailingBytes,
    /// A dict key that is not a string.
    KeyNotString,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("bencode ends inside a value"),
            Self::Unexpected(at) => write!(f, "unexpected byte at offset {at}"),
            Self::TooDeep => write!(f, "nested deeper than {MAX_DEPTH}"),
            Self::TooManyItems => write!(f, "more than {MAX_ITEMS} values"),
            Self::BadInteger => f.write_str("integer not canonical or out of range"),
            Self::BadLength => f.write_str("string length not canonical"),
            Self::TrailingBytes => f.write_str("bytes after the value"),
            Self::KeyNotString => f.write_str("dict key is not a string"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl<'a> Value<'a> {
    /// The value under `key`, if this is a dict that has it.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Self::Dict(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Self::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Self::List(items) => Some(items),
            _ => None,
        }
    }

    /// Canonical bencode of the value: dict keys sorted as raw bytes
    /// (the first of repeated keys kept).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`. Recursion depth is the
    /// value's nesting, at most [`MAX_DEPTH`] for decoded values.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Self::Bytes(bytes) => encode_bytes(bytes, out),
            Self::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Self::Dict(entries) => {
                let mut sorted: Vec<&(&[u8], Value<'_>)> = entries.iter().collect();
                // Stable: among repeated keys the first stays first.
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                sorted.dedup_by(|later, earlier| later.0 == earlier.0);
                out.push(b'd');
                for (key, value) in sorted {
                    encode_bytes(key, out);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// Appends `<len>:<bytes>`.
pub fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// A container being filled.
enum Open<'a> {
    List(Vec<Value<'a>>),
    /// Entries so far, and a key read whose value has not come yet.
    Dict(Vec<(&'a [u8], Value<'a>)>, Option<&'a [u8]>),
}

/// Decodes exactly one value from `input`.
pub fn decode(input: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let mut stack: Vec<Open<'_>> = Vec::new();
    let mut pos = 0;
    let mut items = 0;
    let mut canonical = true;
    loop {
        let &byte = input.get(pos).ok_or(DecodeError::Truncated)?;
        let finished = match byte {
            b'i' => {
                let (n, next) = integer(input, pos + 1)?;
                pos = next;
                Some(Value::Int(n))
            }
            b'0'..=b'9' => {
                let (bytes, next) = string(input, pos)?;
                pos = next;
                Some(Value::Bytes(bytes))
            }
            b'l' | b'd' => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                stack.push(if byte == b'l' {
                    Open::List(Vec::new())
                } else {
                    Open::Dict(Vec::new(), None)
                });
                pos += 1;
                None
            }
            b'e' => {
                pos += 1;
                match stack.pop() {
                    Some(Open::List(list)) => Some(Value::List(list)),
                    Some(Open::Dict(entries, None)) => {
                        if !keys_canonical(&entries) {
                            canonical = false;
                        }
                        Some(Value::Dict(entries))
                    }
                    // A key without a value, or an `e` outside any container.
                    Some(Open::Dict(_, Some(_))) | None => {
                        return Err(DecodeError::Unexpected(pos - 1));
                    }
                }
            }
            _ => return Err(DecodeError::Unexpected(pos)),
        };
        if byte != b'e' {
            items += 1;
            if items > MAX_ITEMS {
                return Err(DecodeError::TooManyItems);
            }
        }
        let Some(value) = finished else {
            continue;
        };
        match stack.last_mut() {
            None => {
                if pos != input.len() {
                    return Err(DecodeError::TrailingBytes);
                }
                return Ok(Decoded { value, canonical });
            }
            Some(Open::List(list)) => list.push(value),
            Some(Open::Dict(entries, pending)) => match pending.take() {
                Some(key) => entries.push((key, value)),
                None => match value {
                    Value::Bytes(key) => *pending = Some(key),
                    _ => return Err(DecodeError::KeyNotString),
                },
            },
        }
    }
}

fn keys_canonical(entries: &[(&[u8], Value<'_>)]) -> bool {
    entries.windows(2).all(|pair| pair[0].0 < pair[1].0)
}

/// Digits from `start` up to `end_byte`; returns them and the offset after
/// `end_byte`.
fn digits(input: &[u8], start: usize, end_byte: u8) -> Result<(&[u8], usize), DecodeError> {
    let rest = input.get(start..).ok_or(DecodeError::Truncated)?;
    let len = rest
        .iter()
        .take(MAX_DIGITS + 2)
        .position(|&b| b == end_byte)
        .ok_or(if rest.len() <= MAX_DIGITS + 1 {
            DecodeError::Truncated
        } else {
            DecodeError::BadInteger
        })?;
    Ok((&rest[..len], start + len + 1))
}

/// `<digits>e` from `start` (after the `i`).
fn integer(input: &[u8], start: usize) -> Result<(i64, usize), DecodeError> {
    let (text, next) = digits(input, start, b'e')?;
    let (negative, magnitude) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let canonical = match magnitude {
        [] => false,
        [b'0'] => !negative,
        [first, ..] => *first != b'0',
    };
    if !canonical || !magnitude.iter().all(u8::is_ascii_digit) {
        return Err(DecodeError::BadInteger);
    }
    let mut n: i64 = 0;
    for digit in magnitude {
        let d = i64::from(digit - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if negative {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or(DecodeError::BadInteger)?;
    }
    Ok((n, next))
}

/// `<len>:<bytes>` from `start`.
fn string(input: &[u8], start: usize) -> Result<(&[u8], usize), DecodeError> {
    let (text, body) = digits(input, start, b':').map_err(|e| match e {
        DecodeError::BadInteger => DecodeError::BadLength,
        other => other,
    })?;
    let canonical = matches!(text, [b'0'] | [b'1'..=b'9', ..]);
    if !canonical || !text.iter().all(u8::is_ascii_digit) {
        return Err(DecodeError::BadLength);
    }
    let len = text
        .iter()
        .try_fold(0usize, |n, d| {
            n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        })
        .ok_or(DecodeError::BadLength)?;
    let end = body.checked_add(len).ok_or(DecodeError::Truncated)?;
    let bytes = input.get(body..end).ok_or(DecodeError::Truncated)?;
    Ok((bytes, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_bep5_ping_and_encodes_it_back() {
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        let decoded = decode(ping).unwrap();
        assert!(decoded.canonical);
        assert_eq!(decoded.value.get(b"q"), Some(&Value::Bytes(b"ping")));
        let id = decoded.value.get(b"a").and_then(|a| a.get(b"id"));
        assert_eq!(
            id.and_then(Value::as_bytes),
            Some(&b"abcdefghij0123456789"[..])
        );
        assert_eq!(decoded.value.encode(), ping);
    }

    #[test]
    fn integers_and_lengths_must_be_canonical() {
        assert_eq!(decode(b"i0e").unwrap().value, Value::Int(0));
        assert_eq!(decode(b"i-42e").unwrap().value, Value::Int(-42));
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap().value,
            Value::Int(i64::MIN)
        );
        for bad in [
            &b"i-0e"[..],
            b"i03e",
            b"ie",
            b"i-e",
            b"i1x2e",
            b"i9223372036854775808e",
            b"i99999999999999999999999e",
        ] {
            assert_eq!(decode(bad), Err(DecodeError::BadInteger), "{bad:?}");
        }
        assert_eq!(decode(b"03:abc"), Err(DecodeError::BadLength));
        assert_eq!(decode(b"0:").unwrap().value, Value::Bytes(b""));
        assert_eq!(decode(b"5:abc"), Err(DecodeError::Truncated));
        assert_eq!(
            decode(b"99999999999999999999999:x"),
            Err(DecodeError::BadLength)
        );
    }

    #[test]
    fn structure_errors_are_reported() {
        assert_eq!(decode(b""), Err(DecodeError::Truncated));
        assert_eq!(decode(b"l"), Err(DecodeError::Truncated));
        assert_eq!(decode(b"e"), Err(DecodeError::Unexpected(0)));
        assert_eq!(decode(b"x"), Err(DecodeError::Unexpected(0)));
        assert_eq!(decode(b"i1ei2e"), Err(DecodeError::TrailingBytes));
        assert_eq!(decode(b"di1ei2ee"), Err(DecodeError::KeyNotString));
        assert_eq!(decode(b"d1:ae"), Err(DecodeError::Unexpected(4)));
    }

    #[test]
    fn bombs_stop_at_the_limits() {
        let deep = [b"l".repeat(MAX_DEPTH), b"e".repeat(MAX_DEPTH)].concat();
        assert!(decode(&deep).is_ok());
        let deeper = [b"l".repeat(MAX_DEPTH + 1), b"e".repeat(MAX_DEPTH + 1)].concat();
        assert_eq!(decode(&deeper), Err(DecodeError::TooDeep));
        // A million open lists fail at the depth limit, not the stack.
        assert_eq!(decode(&b"l".repeat(1_000_000)), Err(DecodeError::TooDeep));
        let wide = [&b"l"[..], &b"i0e".repeat(MAX_ITEMS - 1), b"e"].concat();
        assert!(decode(&wide).is_ok());
        let wider = [&b"l"[..], &b"i0e".repeat(MAX_ITEMS), b"e"].concat();
        assert_eq!(decode(&wider), Err(DecodeError::TooManyItems));
    }

    #[test]
    fn unsorted_keys_are_accepted_but_not_canonical() {
        let unsorted = b"d1:bi1e1:ai2ee";
        let decoded = decode(unsorted).unwrap();
        assert!(!decoded.canonical);
        assert_eq!(decoded.value.get(b"a"), Some(&Value::Int(2)));
        assert_eq!(decoded.value.encode(), b"d1:ai2e1:bi1ee");
        let repeated = decode(b"d1:ai1e1:ai2ee").unwrap();
        assert!(!repeated.canonical);
        assert_eq!(repeated.value.get(b"a"), Some(&Value::Int(1)));
        assert_eq!(repeated.value.encode(), b"d1:ai1ee");
    }
}
