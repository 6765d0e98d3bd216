//! Datagram flows: streams of kind [`StreamKind::UDP`], each one
//! unordered, unreliable data channel (`protocol-spec.md` §6.8).
//!
//! A flow carries datagrams as they are: each message is one datagram,
//! delivered at most once and in any order, never retransmitted (a lost
//! WireGuard or game packet is better lost than late). What a flow is for
//! travels in its channel's label (`tinynode-udp:NAME`), which the
//! channel's open message carries reliably; there is no open frame, no
//! credit and no finish. A flow the peer may not open (kind not taken,
//! peer not allowed, too many) is closed at once. Flow numbers have
//! [`FLOW_BIT`] set, so they never meet the connection's stream numbers.

use std::collections::VecDeque;

use log::debug;
use str0m::Rtc;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};

use super::streams::TableEvent;
use crate::stream::{ResetCode, StreamEvent, StreamHeader, StreamKind, WriteError};

/// The label of a flow's channel starts with this; the service name follows.
pub const FLOW_LABEL_PREFIX: &str = "tinynode-udp:";
/// Set in every flow's number.
pub const FLOW_BIT: u32 = 1 << 31;
/// Largest datagram a flow carries (a UDP datagram on most paths is far
/// smaller; this bounds what one message may cost).
pub const MAX_DATAGRAM: usize = 16 * 1024;
/// Most flows on one connection.
pub const MAX_FLOWS: usize = 256;
/// Datagrams held for a flow whose channel is not open yet.
const MAX_PENDING: usize = 32;
/// Bytes str0m may hold for one flow: beyond, datagrams are dropped (as a
/// full router queue drops them) instead of queued.
const MAX_BUFFERED: usize = 256 * 1024;

#[derive(Debug)]
struct Flow {
    number: u32,
    channel: ChannelId,
    open: bool,
    /// To be closed at the next flush (we ended it, or refused it).
    closing: bool,
    /// Closed on str0m's side already.
    close_sent: bool,
    /// Datagrams written before the channel opened.
    pending: VecDeque<Vec<u8>>,
}

/// A connection's datagram flows.
#[derive(Debug, Default)]
pub struct Flows {
    flows: Vec<Flow>,
    next_number: u32,
    accepted: bool,
    refused_peer: bool,
    events: VecDeque<TableEvent>,
}

/// True when `number` names a flow rather than a stream.
pub fn is_flow(number: u32) -> bool {
    number & FLOW_BIT != 0
}

impl Flows {
    /// Whether flows from the peer are taken.
    pub fn set_accepted(&mut self, accepted: bool) {
        self.accepted = accepted;
    }

    /// Whether the peer may open flows and have them opened to it.
    pub fn set_peer_allowed(&mut self, allowed: bool) {
        self.refused_peer = !allowed;
    }

    fn allocate(&mut self) -> u32 {
        let number = FLOW_BIT | (self.next_number & !FLOW_BIT);
        self.next_number = self.next_number.wrapping_add(1);
        number
    }

    /// Opens a flow for service `name`: its number.
    pub fn open(&mut self, rtc: &mut Rtc, name: &str) -> Result<u32, WriteError> {
        if self.refused_peer {
            return Err(WriteError::NotAllowed);
        }
        if self.flows.len() >= MAX_FLOWS {
            return Err(WriteError::Blocked);
        }
        if name.len() > crate::stream::MAX_NAME {
            return Err(WriteError::TooLong);
        }
        let channel = rtc.direct_api().create_data_channel(ChannelConfig {
            label: format!("{FLOW_LABEL_PREFIX}{name}"),
            ordered: false,
            reliability: Reliability::MaxRetransmits { retransmits: 0 },
            ..Default::default()
        });
        let number = self.allocate();
        self.flows.push(Flow {
            number,
            channel,
            open: false,
            closing: false,
            close_sent: false,
            pending: VecDeque::new(),
        });
        Ok(number)
    }

    /// True if `channel` is a flow's.
    pub fn owns(&self, channel: ChannelId) -> bool {
        self.flows.iter().any(|f| f.channel == channel)
    }

    /// str0m opened `channel` with `label`: ours is ready, or the peer
    /// opened a flow. False if it is not a flow channel.
    pub fn on_channel_open(&mut self, channel: ChannelId, label: &str) -> bool {
        if let Some(flow) = self.flows.iter_mut().find(|f| f.channel == channel) {
            flow.open = true;
            return true;
        }
        let Some(name) = label.strip_prefix(FLOW_LABEL_PREFIX) else {
            return false;
        };
        let header = StreamHeader {
            kind: StreamKind::UDP,
            name: name.to_owned(),
        };
        let refusal = if self.refused_peer {
            Some("not on the allow-list")
        } else if !self.accepted {
            Some("no udp here")
        } else if self.flows.len() >= MAX_FLOWS {
            Some("too many flows")
        } else {
            None
        };
        let number = self.allocate();
        self.flows.push(Flow {
            number,
            channel,
            open: true,
            closing: refusal.is_some(),
            close_sent: false,
            pending: VecDeque::new(),
        });
        self.events.push_back(match refusal {
            Some(reason) => TableEvent::Refused {
                header,
                reason: reason.to_owned(),
            },
            None => TableEvent::Incoming { number, header },
        });
        true
    }

    /// A datagram on flow channel `channel`.
    pub fn on_channel_data(&mut self, channel: ChannelId, bytes: &[u8]) {
        let Some(flow) = self.flows.iter().find(|f| f.channel == channel) else {
            return;
        };
        if flow.closing || bytes.len() > MAX_DATAGRAM {
            debug!("flow: dropped a datagram of {} bytes", bytes.len());
            return;
        }
        self.events.push_back(TableEvent::Stream {
            number: flow.number,
            event: StreamEvent::Data(bytes.to_vec()),
        });
    }

    /// str0m closed `channel`: the flow ended.
    pub fn on_channel_close(&mut self, channel: ChannelId) {
        if let Some(at) = self.flows.iter().position(|f| f.channel == channel) {
            let flow = self.flows.remove(at);
            if !flow.closing {
                self.events.push_back(TableEvent::Stream {
                    number: flow.number,
                    event: StreamEvent::Closed,
                });
            }
        }
    }

    /// The connection ended: every flow is reset.
    pub fn on_connection_lost(&mut self) {
        for flow in self.flows.drain(..) {
            self.events.push_back(TableEvent::Stream {
                number: flow.number,
                event: StreamEvent::Reset {
                    code: ResetCode::ConnectionLost,
                    reason: String::new(),
                },
            });
        }
    }

    /// Sends one datagram on flow `number`: its length, or why not
    /// ([`WriteError::Blocked`] when too much waits: the datagram is not
    /// taken, as a full queue drops it).
    pub fn send(&mut self, rtc: &mut Rtc, number: u32, bytes: &[u8]) -> Result<usize, WriteError> {
        let flow = self
            .flows
            .iter_mut()
            .find(|f| f.number == number && !f.closing)
            .ok_or(WriteError::NotConnected)?;
        if bytes.len() > MAX_DATAGRAM {
            return Err(WriteError::TooLong);
        }
        if !flow.open {
            if flow.pending.len() >= MAX_PENDING {
                return Err(WriteError::Blocked);
            }
            flow.pending.push_back(bytes.to_vec());
            return Ok(bytes.len());
        }
        let mut channel = rtc.channel(flow.channel).ok_or(WriteError::NotConnected)?;
        if channel.buffered_amount() >= MAX_BUFFERED {
            return Err(WriteError::Blocked);
        }
        match channel.write(true, bytes) {
            Ok(true) => Ok(bytes.len()),
            Ok(false) => Err(WriteError::Blocked),
            Err(_) => Err(WriteError::NotConnected),
        }
    }

    /// Ends flow `number` (closes its channel at the next flush).
    pub fn close(&mut self, number: u32) -> Result<(), WriteError> {
        let flow = self
            .flows
            .iter_mut()
            .find(|f| f.number == number && !f.closing)
            .ok_or(WriteError::NotConnected)?;
        flow.closing = true;
        self.events.push_back(TableEvent::Stream {
            number,
            event: StreamEvent::Closed,
        });
        Ok(())
    }

    /// Sends what waited for channels to open, and closes the channels of
    /// ended and refused flows.
    pub fn flush(&mut self, rtc: &mut Rtc) {
        for flow in &mut self.flows {
            if flow.closing {
                if !flow.close_sent {
                    flow.close_sent = true;
                    rtc.direct_api().close_data_channel(flow.channel);
                }
                continue;
            }
            if !flow.open || flow.pending.is_empty() {
                continue;
            }
            let Some(mut channel) = rtc.channel(flow.channel) else {
                continue;
            };
            while let Some(datagram) = flow.pending.pop_front() {
                if !matches!(channel.write(true, &datagram), Ok(true)) {
                    break;
                }
            }
        }
    }

    /// The next event for the connection.
    pub fn poll_event(&mut self) -> Option<TableEvent> {
        self.events.pop_front()
    }
}
