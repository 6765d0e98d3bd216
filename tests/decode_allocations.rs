//! STUN decoding must not allocate: it borrows the datagram. A counting
//! global allocator checks that decoding, verifying and walking the
//! attributes of the RFC 5769 sample request performs zero allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use tinynode::wire::stun::{IntegrityKey, Message};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: delegates to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decoding_allocates_nothing() {
    let request = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/stun_decode/rfc5769_request"
    ))
    .expect("RFC 5769 sample in the corpus");
    let key = IntegrityKey::short_term("VOkJxbRl1RmTxUk/WvJxBt");
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let message = Message::decode(&request).expect("sample decodes");
    let attributes = message.attributes().count();
    let fingerprint = message.fingerprint_status();
    let unknown = message.unknown_required_attributes().count();
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    // Integrity uses ring's HMAC context, which lives on the stack too.
    let integrity = message.integrity_status(&key);
    let after_integrity = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!((attributes, unknown), (6, 0));
    assert_eq!(format!("{fingerprint:?} {integrity:?}"), "Valid Valid");
    assert_eq!(after - before, 0, "decode allocated");
    assert_eq!(after_integrity - after, 0, "integrity check allocated");
}
