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

#![allow(dead_code)] // The bench uses a subset.

use super::netns::Netns;

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

    /// A home-router firewall and MASQUERADE on `router`; `random_ports`
    /// picks a new public port per destination (`--random-fully`).
    pub fn nat(&self, router: &str, random_ports: bool) {
        let masquerade = if random_ports {
            "-t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully"
        } else {
            "-t nat -A POSTROUTING -o wan -j MASQUERADE"
        };
        let rules = [
            "-F",
            "-t nat -F",
            "-P FORWARD DROP",
            "-A FORWARD -i lan -o wan -j ACCEPT",
            "-A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
            "-A INPUT -i wan -j DROP",
            masquerade,
        ];
        for rule in rules {
            let mut args = vec!["iptables"];
            args.extend(rule.split_whitespace());
            self.exec(router, &args);
        }
    }
}
