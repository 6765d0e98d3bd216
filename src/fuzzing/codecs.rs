//! Codec checks: each parser decodes without panicking, and what it
//! decodes re-encodes to the same meaning (STUN, DHT frames, KRPC, link
//! reports, stream and transfer frames).

use crate::dht::wire::{decode_frame, encode_frame};
use crate::hello;
use crate::mainline::{bencode, krpc};
use crate::stun::message::{IntegrityKey, Message, MessageEncoder};

/// Decode → encode → decode must agree, and the checks on a decoded message
/// must not panic.
pub fn check_stun_decode(data: &[u8]) {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    message.fingerprint_status();
    message.integrity_status(&IntegrityKey::short_term("fuzz"));
    message.reflexive_address();
    let mut encoder =
        MessageEncoder::new(message.class(), message.method(), message.transaction_id());
    for attribute in message.attributes() {
        encoder.push(&attribute);
    }
    let bytes = encoder.finish();
    let again = Message::decode(&bytes).expect("a re-encoded message decodes");
    assert_eq!(again.header().class, message.class());
    assert_eq!(again.method(), message.method());
    assert_eq!(again.transaction_id(), message.transaction_id());
    assert!(
        again.attributes().eq(message.attributes()),
        "attributes differ after a round trip"
    );
    assert!(
        bytes.len() <= data.len(),
        "re-encoding never grows a message"
    );
}

/// DHT frame decode: no panic; decode → encode → decode agrees; encoding
/// is idempotent and never longer than what was decoded (the encoder
/// writes the shortest form).
pub fn check_dht_frame(data: &[u8]) {
    let Ok(message) = decode_frame(data) else {
        return;
    };
    let bytes = encode_frame(&message);
    assert!(bytes.len() <= data.len(), "re-encoding grew the frame");
    let again = decode_frame(&bytes).expect("a re-encoded frame decodes");
    assert_eq!(again, message, "DHT frame round trip");
    assert_eq!(encode_frame(&again), bytes, "encoding is idempotent");
}

/// Mainline input: bencode decode → encode → decode agrees, re-encoding
/// is canonical and idempotent, canonical input comes back byte for byte
/// and nothing grows; a KRPC response keeps within its caps, holds each
/// family's contacts in its own list and addresses in canonical form, and
/// survives encode → decode; a hello re-encodes to its own bytes.
pub fn check_krpc(data: &[u8]) {
    if let Ok(decoded) = bencode::decode(data) {
        let bytes = decoded.value.encode();
        assert!(bytes.len() <= data.len(), "re-encoding grew the value");
        let again = bencode::decode(&bytes).expect("a re-encoded value decodes");
        assert!(again.canonical, "the encoder writes canonical bencode");
        assert_eq!(again.value.encode(), bytes, "encoding is idempotent");
        if decoded.canonical {
            assert_eq!(bytes, data, "canonical input round-trips byte for byte");
        }
    }
    if let Ok(krpc::Message::Response { txid, body }) = krpc::decode(data) {
        assert!(body.nodes.len() <= krpc::MAX_NODES);
        assert!(body.nodes6.len() <= krpc::MAX_NODES);
        assert!(
            body.nodes.iter().all(|n| n.addr.is_ipv4()),
            "nodes are IPv4"
        );
        assert!(
            body.nodes6.iter().all(|n| n.addr.is_ipv6()),
            "nodes6 are IPv6"
        );
        assert!(body.values.len() <= krpc::MAX_VALUES);
        assert!(
            body.values
                .iter()
                .chain(body.ip.iter())
                .all(|a| *a == crate::addr::canonical(*a)),
            "addresses are read in canonical form"
        );
        assert!(
            body.token
                .as_ref()
                .is_none_or(|t| t.len() <= krpc::MAX_TOKEN_LEN)
        );
        let bytes = krpc::encode_response(txid, &body);
        match krpc::decode(&bytes) {
            Ok(krpc::Message::Response { body: again, .. }) => {
                assert_eq!(again, body, "KRPC response round trip")
            }
            other => panic!("a re-encoded response decodes as {other:?}"),
        }
    }
    if let Ok(decoded) = hello::decode(data) {
        // Re-encoded with the code it carries, a hello is its own bytes.
        let carried = |_: &[u8]| {
            let mut code = [0; hello::MAC_LEN];
            code.copy_from_slice(&data[hello::HELLO_LEN - hello::MAC_LEN..]);
            code
        };
        assert_eq!(hello::encode(&decoded, carried), data, "hello round trip");
    }
}

/// Link reports and the loss meter (`rtc/link.rs`): no panic; a report
/// that decodes re-encodes to its own bytes and holds a share (at most
/// 1000 permille); a record number comes only from a DTLS 1.x header. The
/// input is then read as datagrams (a length byte, then that many bytes)
/// fed to a meter, each one that reads as a report also taken as the
/// peer's declaration: every figure the meter gives is a share, and a
/// meter then fed three rounds of clean records of a later epoch, each
/// declared by a real ledger, reports no loss for the last round.
pub fn check_link(data: &[u8]) {
    use crate::rtc::link::{BLOCK, LinkReport, LossMeter, SentLedger, record_number};
    if let Some(report) = LinkReport::decode(data) {
        assert!(report.loss.is_none_or(|loss| loss <= 1000), "a share");
        assert_eq!(report.encode().as_slice(), data, "report round trip");
    }
    if record_number(data).is_some() {
        assert!(
            crate::rtc::link::DTLS_CONTENT_TYPES.contains(&data[0]) && data[1] == 0xFE,
            "DTLS only"
        );
    }
    let mut meter = LossMeter::default();
    let mut rest = data;
    let mut last_epoch = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let datagram = tail.get(..usize::from(len)).unwrap_or(tail);
        rest = &tail[datagram.len()..];
        if let Some(number) = record_number(datagram) {
            last_epoch = last_epoch.max(number >> 48);
        }
        meter.observe(datagram);
        if let Some(sent) = LinkReport::decode(datagram).and_then(|r| r.sent) {
            meter.declared(sent);
        }
        if let Some(loss) = meter.take_report() {
            assert!(loss <= 1000, "a share");
        }
    }
    let epoch = (last_epoch + 1).min(0xFFFF) << 48;
    let mut ledger = SentLedger::default();
    let mut reports = Vec::new();
    for round in 0..3u64 {
        for seq in round * 8 * BLOCK..(round + 1) * 8 * BLOCK {
            let mut record = vec![23, 0xFE, 0xFD];
            record.extend_from_slice(&(epoch + seq).to_be_bytes());
            ledger.note(&record, 1);
            meter.observe(&record);
        }
        if let Some(sent) = ledger.take() {
            meter.declared(sent);
        }
        reports.push(meter.take_report());
    }
    assert_eq!(
        reports.last(),
        Some(&Some(0)),
        "clean records report no loss: {reports:?}"
    );
}

/// Stream frames and one stream's state machine (`stream.rs`): no panic;
/// a frame that parses re-parses identically from its own encoding, within
/// its bounds. The input is then read as messages (a length byte, then
/// that many bytes) fed to an accepted stream whose application never
/// consumes: it never hands over more data than its first grant, and
/// after it ends nothing more happens.
pub fn check_stream_frames(data: &[u8]) {
    use crate::stream::{Frame, MAX_DATA, STREAM_WINDOW, Stream, StreamEvent};
    if let Ok(frame) = Frame::parse(data) {
        let encoded = frame.encode();
        assert_eq!(Frame::parse(&encoded), Ok(frame.clone()), "stable");
        if let Frame::Data(bytes) = frame {
            assert!(!bytes.is_empty() && bytes.len() <= MAX_DATA);
        }
    }
    let mut stream = Stream::accepted();
    let (mut delivered, mut ended) = (0u64, false);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let message = tail.get(..usize::from(len)).unwrap_or(tail);
        rest = &tail[message.len()..];
        stream.on_message(message);
        while let Some(event) = stream.poll_event() {
            assert!(!ended, "an event after the end: {event:?}");
            match event {
                StreamEvent::Data(bytes) => delivered += bytes.len() as u64,
                StreamEvent::Reset { .. } | StreamEvent::Closed => ended = true,
                _ => {}
            }
        }
        assert_eq!(ended, stream.is_ended());
    }
    assert!(delivered <= STREAM_WINDOW, "at most the grant: {delivered}");
}

/// A file-transfer frame (`transfer::wire`, spec §6.9) parses from any
/// bytes without panicking, and one that parses re-parses from its
/// encoding; an offer's chunk hashes match its files' sizes. The input
/// fed to a [`FrameReader`](crate::transfer::wire::FrameReader) in
/// pieces gives the same frames as fed whole, and the reader holds less
/// than a frame's prefix plus [`MAX_FRAME`](crate::transfer::wire::MAX_FRAME).
pub fn check_transfer_frames(data: &[u8]) {
    use crate::transfer::wire::{EntryKind, Frame, FrameReader, MAX_FRAME, chunk_count};
    if let Ok(frame) = Frame::parse(data) {
        let encoded = frame.encode();
        assert_eq!(Frame::parse(&encoded[4..]), Ok(frame.clone()), "stable");
        if let Frame::Offer(offer) = &frame {
            for entry in &offer.entries {
                if let EntryKind::File { size, chunks, .. } = &entry.kind {
                    assert_eq!(chunks.len() as u64, chunk_count(*size, offer.chunk_size));
                }
            }
        }
    }
    let frames = |pieces: &mut dyn Iterator<Item = &[u8]>| {
        let mut reader = FrameReader::default();
        let mut out = Vec::new();
        for piece in pieces {
            reader.push(piece);
            loop {
                match reader.next_frame() {
                    Ok(Some(frame)) => out.push(Ok(frame)),
                    Ok(None) => break,
                    Err(error) => {
                        out.push(Err(error));
                        return out;
                    }
                }
            }
            assert!(reader.buffered() < 4 + MAX_FRAME + piece.len());
        }
        out
    };
    let whole = frames(&mut std::iter::once(data));
    let split = frames(&mut data.chunks(7));
    assert_eq!(whole, split, "the same frames in pieces");
}
