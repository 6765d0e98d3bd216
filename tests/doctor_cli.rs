//! `tinynode doctor` on loopback: it finds a `serve --relay` node and says
//! it relays, says a plain serve node does not, reports the socket and
//! public address, and exits 2 within its time limit when no bootstrap
//! source answers. (Mapping and hairpinning behind real NATs are checked
//! in `tests/nat_lab.rs`.)

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Running, field, tinynode};

fn serve(relay: bool) -> (Running, SocketAddr) {
    if relay {
        common::start_serve_with(&["--relay", "--no-mainline"])
    } else {
        common::start_serve()
    }
}

/// The doctor's time limit (`cli/doctor.rs`), in milliseconds.
const DOCTOR_LIMIT_MS: u64 = 10_000;

/// Runs doctor against `bootstrap`; its one JSON line, exit code and the
/// time it reports (`took_ms`: its own clock, process start-up excluded).
fn doctor(bootstrap: &[SocketAddr]) -> (String, Option<i32>, u64) {
    let mut command = tinynode();
    command.args(["doctor", "--no-mainline", "--bind", "127.0.0.1:0", "--json"]);
    for addr in bootstrap {
        command.args(["--bootstrap", &addr.to_string()]);
    }
    let mut run = Running::spawn(command);
    let report = run.next_line(Duration::from_secs(15));
    let status = run.wait(Duration::from_secs(5));
    let took = field(&report, "took_ms")
        .expect("took_ms")
        .parse()
        .expect("ms");
    (report, status.code(), took)
}

#[test]
fn doctor_names_the_relays_among_the_bootstrap_nodes() {
    let (_relay, relay_addr) = serve(true);
    let (_plain, plain_addr) = serve(false);
    let (report, code, took) = doctor(&[relay_addr, plain_addr]);
    println!("{report} in {took} ms");
    assert_eq!(field(&report, "event"), Some("doctor"));
    let relays = field(&report, "relays").expect("a relays field");
    assert!(
        relays.contains(&format!("{relay_addr} (relays, 256 KiB/s per pair)")),
        "{relays}"
    );
    assert!(
        relays.contains(&format!("{plain_addr} (not a relay)")),
        "{relays}"
    );
    let socket = field(&report, "socket").expect("socket");
    assert!(socket.starts_with("127.0.0.1:"), "{report}");
    assert!(
        field(&report, "public_address").is_some_and(|p| p.starts_with(socket)),
        "no NAT on loopback: {report}"
    );
    assert!(field(&report, "bootstrap").is_some_and(|b| b.starts_with("joined in")));
    assert_eq!(code, Some(0), "{report}");
    // Everything answered: the doctor reported before its limit cut it off.
    assert!(took < DOCTOR_LIMIT_MS, "{took} ms");
}

#[test]
fn doctor_exits_2_when_no_bootstrap_node_answers() {
    let silent = SocketAddr::from(([127, 0, 0, 1], common::free_udp_port()));
    let (report, code, took) = doctor(&[silent]);
    assert_eq!(field(&report, "bootstrap"), Some("no answer"), "{report}");
    assert_eq!(field(&report, "relays"), Some("none answered"), "{report}");
    assert_eq!(code, Some(2), "{report}");
    // Nothing answered: the doctor gave up at its limit, not later.
    assert!(took <= DOCTOR_LIMIT_MS + 100, "{took} ms");
}

#[test]
fn doctor_with_nothing_to_ask_exits_2_at_once() {
    let mut command = tinynode();
    command.args(["doctor", "--no-mainline", "--bind", "127.0.0.1:0"]);
    let mut run = Running::spawn(command);
    let status = run.wait(Duration::from_secs(5));
    assert_eq!(status.code(), Some(2));
    run.wait_stderr("nothing to ask", Duration::from_secs(1));
}
