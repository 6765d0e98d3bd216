//! LAN beacons on the node: our beacon multicast from each socket (IPv4 to
//! 239.255.70.77, IPv6 to ff02::114) on the LAN source's schedule, and
//! beacons heard (the driver's listeners hand them in like any datagram).
//!
//! A beacon is judged cheapest first: its meeting tag against the tags of
//! the current and neighbouring windows (one comparison; other meetings'
//! beacons stop here), then the record, opened and checked by membership.
//! A verified beacon of a member we did not know makes it a member with a
//! direct signal path to the beacon's source, and is answered with a LAN
//! hello to that source, so the beacon's sender learns us at once.

use std::net::SocketAddr;
use std::time::Instant;

use log::debug;

use super::Node;
use super::stats::DropReason;
use crate::api::Via;
use crate::beacon::{self, MAX_BEACON_RECORD};
use crate::hello::HelloKind;
use crate::meeting::LAN_WINDOW;
use crate::membership::SignalPath;
use crate::record;

/// ⌊Unix seconds / LAN_WINDOW⌋ at `unix_ms`.
fn lan_window(unix_ms: u64) -> u64 {
    unix_ms / LAN_WINDOW.as_millis() as u64
}

impl Node {
    /// Sends our beacon when the LAN source says one is due.
    pub(super) fn lan_source_timeout(&mut self, now: Instant) {
        let due = self
            .joined
            .as_mut()
            .and_then(|j| j.sources.lan.as_mut())
            .is_some_and(|lan| lan.beacon_due(now));
        if !due {
            return;
        }
        let Some(sealed) = self.sealed_record(now, MAX_BEACON_RECORD) else {
            return;
        };
        let Some(joined) = self.joined.as_ref() else {
            return;
        };
        let unix_ms = self.config.clock.unix_ms(now);
        let tag = joined.membership.meeting().lan_tag(lan_window(unix_ms));
        let payload = beacon::encode(tag, &sealed);
        for &local in self.locals.all() {
            let group = beacon::group_for(local);
            debug!("lan: beacon to {group} from {local}");
            self.transmits.push_back(crate::transmit::Transmit {
                source: local,
                destination: group,
                payload: payload.clone(),
            });
        }
    }

    /// A datagram that starts with the beacon tag (already rate-limited),
    /// from `source` to our `destination`: taken only from the beacon
    /// listener (destination the group), never from the unicast socket,
    /// where anyone anywhere could replay a captured beacon to us.
    pub(super) fn on_beacon(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        if !destination.ip().is_multicast() {
            debug!("lan: beacon from {source} to our unicast address; dropped");
            return self.drop_datagram(source, DropReason::BeaconUnicast);
        }
        let heard = match beacon::decode(data) {
            Ok(heard) => heard,
            Err(error) => {
                debug!("lan: beacon from {source}: {error}");
                return self.drop_datagram(source, DropReason::BeaconMalformed);
            }
        };
        let unix_ms = self.config.clock.unix_ms(now);
        let me = self.node_id();
        let Some(joined) = self.joined.as_mut() else {
            return self.drop_datagram(source, DropReason::BeaconOtherMeeting);
        };
        let meeting = joined.membership.meeting();
        let window = lan_window(unix_ms);
        let ours = joined
            .sources
            .lan
            .as_mut()
            .is_some_and(|lan| lan.tag_matches(window, &heard.tag, |w| meeting.lan_tag(w)));
        if !ours {
            return self.drop_datagram(source, DropReason::BeaconOtherMeeting);
        }
        let meeting = joined.membership.meeting();
        let record = match record::open(meeting, heard.record) {
            Ok(record) => record,
            Err(error) => {
                debug!("lan: beacon from {source} does not open: {error:?}");
                return self.drop_datagram(source, DropReason::BeaconUnverified);
            }
        };
        let node_id = record.node_id;
        if node_id == me {
            // Our own beacon, looped back to our listener.
            self.stats.beacons += 1;
            return;
        }
        // A member we do not know, or one we are not connected to whose
        // record is newer than ours of it (it restarted, or moved): greet
        // it now rather than at our next beacon.
        let known_ms = joined.membership.peer(&node_id).map(|p| p.record_ms);
        let fresh = known_ms.is_some_and(|ms| record.timestamp_ms > ms);
        // A replay of a record we have is not greeted (each greeting is a
        // datagram a replayer could aim at someone else).
        let new = known_ms.is_none() || (fresh && !joined.connections.is_connected(&node_id));
        if !self.take_opened(now, record, Via::Lan, SignalPath::Direct(source), false) {
            return self.drop_datagram(source, DropReason::BeaconUnverified);
        }
        self.stats.beacons += 1;
        let restarted = self
            .joined
            .as_mut()
            .is_some_and(|j| j.connections.restart_if_stale(now, node_id, source, fresh));
        let answer = (new || restarted)
            && self
                .joined
                .as_mut()
                .and_then(|j| j.sources.lan.as_mut())
                .is_some_and(|lan| lan.heard(now, source));
        if answer {
            debug!(
                "lan: member {} at {source}, new or not connected; greeting it",
                node_id.short()
            );
            self.send_hellos(now, &[source], HelloKind::Lan);
        }
    }
}
