//! The NAT lab's topology, shared by `tests/nat_lab.rs` and the bench:
//!
//! ```text
//!                 pub 198.18.0.1  (serve node)    bridge br0
//!                /                \
//!   nat1 198.18.0.11 | 10.1.0.1    nat2 198.18.0.12 | 10.2.0.1   MASQUERADE routers
//!               |                     |                          that drop unsolicited inbound
//!   a 10.1.0.2 (member)            b 10.2.0.2 (member)
//! ```
//!
//! All traffic stays inside the namespaces (198.18.0.0/15 is the
//! benchmarking range, 10/8 private).
//!
//! [`Lab::enable_ipv6`] adds IPv6 beside it, from unique-local prefixes:
//! the bridge `fd00:18::/64` (serve `fd00:18::1`), the routers'
//! `wan` at `fd00:18::1i`, and behind router `i` the LAN `fd00:i::/64`
//! (member at `fd00:i::2`), routed without translation through a stateful
//! firewall (`ip6tables`: out freely, in only what answers traffic out),
//! as home routers and carriers' CPEs do for IPv6.

#![allow(dead_code)] // The bench uses a subset.

use super::Running;
use super::netns::Netns;

/// Where the lab's serve node listens (the public bridge).
pub const SERVE_ADDR: &str = "198.18.0.1:3478";

/// The NAT lab's namespaces and topology.
pub struct Lab {
    netns: Netns,
}

impl std::ops::Deref for Lab {
    type Target = Netns;
    fn deref(&self) -> &Netns {
        &self.netns
    }
}

impl Lab {
    /// Builds the topology (namespaces tagged `tag`), or returns why the
    /// kernel refused.
    pub fn build(tag: &str) -> Result<Lab, String> {
        let netns = Netns::create(tag, &["pub", "nat1", "nat2", "a", "b"])?;
        let lab = Lab { netns };
        lab.ip("pub", "link add br0 type bridge");
        lab.ip("pub", "addr add 198.18.0.1/24 dev br0");
        lab.ip("pub", "link set br0 up");
        for (i, host) in [(1, "a"), (2, "b")] {
            let router = format!("nat{i}");
            lab.ip(
                &router,
                &format!(
                    "link add wan type veth peer name nat{i} netns {}",
                    lab.ns("pub")
                ),
            );
            lab.ip("pub", &format!("link set nat{i} master br0 up"));
            lab.ip(&router, &format!("addr add 198.18.0.1{i}/24 dev wan"));
            lab.ip(&router, "link set wan up");
            lab.ip(
                &router,
                &format!(
                    "link add lan type veth peer name eth0 netns {}",
                    lab.ns(host)
                ),
            );
            lab.ip(&router, &format!("addr add 10.{i}.0.1/24 dev lan"));
            lab.ip(&router, "link set lan up");
            lab.ip(host, &format!("addr add 10.{i}.0.2/24 dev eth0"));
            lab.ip(host, "link set eth0 up");
            lab.ip(host, &format!("route add default via 10.{i}.0.1"));
            lab.exec(&router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            lab.nat(&router, false);
        }
        Ok(lab)
    }

    /// Adds the IPv6 side (see the module doc): addresses without
    /// duplicate address detection (usable at once), routes between the
    /// LANs and the bridge, and each router's stateful firewall.
    pub fn enable_ipv6(&self) {
        super::require_tool("ip6tables", "iptables");
        self.ip("pub", "addr add fd00:18::1/64 dev br0 nodad");
        self.exec("pub", &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        for i in [1, 2] {
            let (router, host) = (format!("nat{i}"), ["a", "b"][i - 1]);
            let other = 3 - i;
            self.exec(
                &router,
                &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
            );
            self.ip(&router, &format!("addr add fd00:18::1{i}/64 dev wan nodad"));
            self.ip(&router, &format!("addr add fd00:{i}::1/64 dev lan nodad"));
            self.ip(
                &router,
                &format!("-6 route add fd00:{other}::/64 via fd00:18::1{other}"),
            );
            self.ip(
                "pub",
                &format!("-6 route add fd00:{i}::/64 via fd00:18::1{i}"),
            );
            self.ip(host, &format!("addr add fd00:{i}::2/64 dev eth0 nodad"));
            self.ip(host, &format!("-6 route add default via fd00:{i}::1"));
            for rule in [
                "-P FORWARD DROP",
                "-A FORWARD -i lan -o wan -j ACCEPT",
                "-A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                // Neighbour discovery and errors stay allowed.
                "-A FORWARD -p ipv6-icmp -j ACCEPT",
            ] {
                let mut args = vec!["ip6tables"];
                args.extend(rule.split_whitespace());
                self.exec(&router, &args);
            }
        }
    }

    /// A member of `code` in namespace `ns`, bound to `ip`, through the
    /// DHT node at `bootstrap` only (no Mainline, no LAN), with JSON
    /// events on stdout and standard input piped.
    pub fn join(&self, ns: &str, ip: &str, code: &str, bootstrap: &str) -> Running {
        let bind = format!("{ip}:0");
        self.spawn(
            ns,
            &[
                "join",
                code,
                "--bootstrap",
                bootstrap,
                "--bind",
                &bind,
                "--json",
                "--no-mainline",
                "--no-lan",
            ],
            true,
        )
    }

    /// `tinynode serve --relay` in the public namespace at [`SERVE_ADDR`]
    /// (Mainline off, JSON events), `extra` before the command (`-v`) or
    /// after it (relay quotas); returned once it printed its first line.
    pub fn serve_relay(&self, before: &[&str], after: &[&str]) -> Running {
        let mut args = before.to_vec();
        args.extend([
            "serve",
            "--bind",
            SERVE_ADDR,
            "--relay",
            "--no-mainline",
            "--json",
        ]);
        args.extend(after);
        let serve = self.spawn("pub", &args, false);
        serve.next_line(std::time::Duration::from_secs(10));
        serve
    }

    /// A home-router firewall and MASQUERADE on `router`; `random_ports`
    /// picks a new public port per destination (`--random-fully`).
    pub fn nat(&self, router: &str, random_ports: bool) {
        let mode = if random_ports {
            NatMode::Symmetric
        } else {
            NatMode::PortRestricted
        };
        self.nat_mode(router, mode);
    }

    /// Router `router` (`nat1` or `nat2`) behaves as `mode` (RFC 4787
    /// mapping and filtering; `shared/NAT-RELAY.md` §5.1), for the host
    /// behind it.
    pub fn nat_mode(&self, router: &str, mode: NatMode) {
        let host = match router {
            "nat1" => "10.1.0.2",
            _ => "10.2.0.2",
        };
        router_mode(&self.netns, router, host, mode);
    }
}

/// Router `router` of `netns` (interfaces `wan` and `lan`) behaves as
/// `mode` for the host at `host` behind it (the modes that let inbound
/// datagrams in forward them there), its old rules and mappings gone.
pub fn router_mode(netns: &Netns, router: &str, host: &str, mode: NatMode) {
    let masquerade = if mode == NatMode::Symmetric {
        "-t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully".to_owned()
    } else {
        "-t nat -A POSTROUTING -o wan -j MASQUERADE".to_owned()
    };
    let mut rules: Vec<String> = [
        "-F",
        "-X",
        "-t nat -F",
        "-P FORWARD DROP",
        "-A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "-A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        "-A INPUT -i wan -j DROP",
    ]
    .iter()
    .map(|r| (*r).to_owned())
    .collect();
    match mode {
        NatMode::PortRestricted | NatMode::Symmetric => {
            rules.push("-A FORWARD -i lan -o wan -j ACCEPT".into());
        }
        NatMode::FullCone => {
            // Inbound to any port reaches the host (the mapping keeps
            // its port), from anyone.
            rules.push("-A FORWARD -i lan -o wan -j ACCEPT".into());
            rules.push(format!(
                "-t nat -A PREROUTING -i wan -p udp --dport 1024:65535 -j DNAT --to-destination {host}"
            ));
            rules.push(format!(
                "-A FORWARD -i wan -o lan -p udp -d {host} -j ACCEPT"
            ));
        }
        NatMode::AddressRestricted => {
            // As full cone, but only from IPs the host has sent to.
            rules.push(
                "-A FORWARD -i lan -o wan -m recent --name contacted --rdest --set -j ACCEPT"
                    .into(),
            );
            rules.push(format!(
                "-t nat -A PREROUTING -i wan -p udp --dport 1024:65535 -m recent --name contacted --rsource --rcheck --seconds 120 -j DNAT --to-destination {host}"
            ));
            rules.push(format!(
                "-A FORWARD -i wan -o lan -p udp -d {host} -j ACCEPT"
            ));
        }
    }
    rules.push(masquerade);
    for rule in &rules {
        let mut args = vec!["iptables"];
        args.extend(rule.split_whitespace());
        netns.exec(router, &args);
    }
    // Mappings of the previous mode must not outlive it.
    let _ = std::process::Command::new("ip")
        .args(["netns", "exec", &netns.ns(router), "conntrack", "-F"])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status();
}

/// What a lab router does, RFC 4787's mapping and filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatMode {
    /// Endpoint-independent mapping, address-and-port-dependent filtering:
    /// Linux MASQUERADE, the everyday home router.
    PortRestricted,
    /// Address-and-port-dependent mapping (`--random-fully`): a new port
    /// per destination.
    Symmetric,
    /// Endpoint-independent mapping and filtering: anyone reaches the
    /// mapping.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering: anyone
    /// at an IP the host has sent to reaches the mapping.
    AddressRestricted,
}
