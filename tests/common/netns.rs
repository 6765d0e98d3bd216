//! Network namespaces a test creates for itself (as root, as `.ci/run`
//! does): creating and deleting them, running commands and `tinynode`
//! inside them. Shared by the NAT lab and the LAN lab.

#![allow(dead_code)] // Each lab uses a different subset.

use std::process::{Command, Stdio};

use super::{Running, require_tool};

/// Serialises `ip netns add` within one test process.
static NETNS_ADD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Namespaces named `PREFIX` + name; deleted, with their processes, on drop.
pub struct Netns {
    prefix: String,
    names: Vec<String>,
}

impl Netns {
    /// Creates the namespaces `names` (loopback up in each), or says why
    /// the machine refuses; `tag` keeps two labs of one process apart.
    pub fn create(tag: &str, names: &[&str]) -> Result<Netns, String> {
        require_tool("ip", "iproute2");
        require_tool("iptables", "iptables");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root, so network namespaces cannot be created".into());
        }
        let prefix = format!("tn{tag}{}", std::process::id() % 100_000);
        let mut netns = Netns {
            prefix,
            names: Vec::new(),
        };
        for name in names {
            let full = netns.ns(name);
            // The first `ip netns add` on a fresh machine creates and
            // mounts /run/netns; two at once can race on that mount, so
            // this process adds one namespace at a time.
            let output = {
                let _one_at_a_time = NETNS_ADD.lock().unwrap_or_else(|p| p.into_inner());
                Command::new("ip")
                    .args(["netns", "add", &full])
                    .output()
                    .map_err(|error| format!("cannot run ip: {error}"))?
            };
            if !output.status.success() {
                return Err(format!(
                    "the kernel refused a network namespace: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
            netns.names.push((*name).to_owned());
            netns.ip(name, "link set lo up");
        }
        Ok(netns)
    }

    /// The full name of namespace `name`.
    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs `ip netns exec NS args...`, panicking with its output on failure.
    /// `iptables` and `ip6tables` wait for the xtables lock (`-w`) that
    /// every namespace shares, so labs running in parallel do not fail
    /// each other's rule changes.
    pub fn exec(&self, ns: &str, args: &[&str]) {
        let ns = self.ns(ns);
        let mut full = vec!["netns", "exec", ns.as_str()];
        match args.split_first() {
            Some((tool, rest)) if *tool == "iptables" || *tool == "ip6tables" => {
                full.extend([*tool, "-w"]);
                full.extend_from_slice(rest);
            }
            _ => full.extend_from_slice(args),
        }
        run("ip", &full);
    }

    /// Makes host `ns` drop each UDP datagram it sends or receives with
    /// probability `loss` (iptables `statistic`): a lossy link.
    pub fn drop_udp(&self, ns: &str, loss: f64) {
        let probability = format!("{loss}");
        for chain in ["INPUT", "OUTPUT"] {
            self.exec(
                ns,
                &[
                    "iptables",
                    "-A",
                    chain,
                    "-p",
                    "udp",
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &probability,
                    "-j",
                    "DROP",
                ],
            );
        }
    }

    /// Runs `ip -n NS args`.
    pub fn ip(&self, ns: &str, args: &str) {
        let ns = self.ns(ns);
        let mut full = vec!["-n", ns.as_str()];
        full.extend(args.split_whitespace());
        run("ip", &full);
    }

    /// Starts `tinynode serve` on host `serve` (the bridge labs' first
    /// address, 10.9.0.11:3478) and `join CODE` on each of `members` (the
    /// next addresses, in order) bootstrapping from it, with JSON output,
    /// stdin, no Mainline and no LAN beacon; the members with the node IDs
    /// they announced.
    pub fn serve_and_join(
        &self,
        serve: &str,
        members: &[&str],
        code: &str,
        env: &[(&str, &str)],
    ) -> (Running, Vec<(Running, String)>) {
        const SERVE: &str = "10.9.0.11:3478";
        let limit = std::time::Duration::from_secs(10);
        let server = self.spawn(
            serve,
            &["serve", "--bind", SERVE, "--no-mainline", "--json"],
            false,
        );
        server.next_line(limit);
        let members = members
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let bind = format!("10.9.0.{}:0", 12 + i);
                let args = [
                    "join",
                    code,
                    "--bootstrap",
                    SERVE,
                    "--bind",
                    &bind,
                    "--json",
                    "--no-mainline",
                    "--no-lan",
                ];
                let member = self.spawn_env(host, env, &args, true);
                let started = member.next_line(limit);
                let id = super::field(&started, "node_id")
                    .expect("node_id")
                    .to_owned();
                (member, id)
            })
            .collect();
        (server, members)
    }

    /// Starts the test build of `tinynode` with `args` inside `ns`.
    pub fn spawn(&self, ns: &str, args: &[&str], stdin: bool) -> Running {
        self.spawn_env(ns, &[], args, stdin)
    }

    /// Starts `program args` inside `ns` with extra environment
    /// variables, without stdin.
    pub fn spawn_program(
        &self,
        ns: &str,
        env: &[(&str, &str)],
        program: &str,
        args: &[&str],
    ) -> Running {
        let mut command = Command::new("ip");
        command
            .envs(env.iter().copied())
            .args(["netns", "exec", &self.ns(ns), program])
            .args(args);
        Running::spawn(command)
    }

    /// [`spawn`](Self::spawn) with extra environment variables.
    pub fn spawn_env(&self, ns: &str, env: &[(&str, &str)], args: &[&str], stdin: bool) -> Running {
        let mut command = Command::new("ip");
        command.envs(env.iter().copied());
        command
            .args([
                "netns",
                "exec",
                &self.ns(ns),
                env!("CARGO_BIN_EXE_tinynode"),
            ])
            .args(args);
        if stdin {
            command.stdin(Stdio::piped());
            Running::spawn_with_stdin(command)
        } else {
            Running::spawn(command)
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in self.names.iter().rev() {
            let full = self.ns(name);
            if let Ok(output) = Command::new("ip").args(["netns", "pids", &full]).output() {
                for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                    let _ = Command::new("kill").arg(pid).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", &full]).status();
        }
    }
}

/// Namespace `lan` holding bridge `br0` (multicast flooded to every port)
/// and one namespace per host, host `i` at 10.9.0.(11 + i)/24 on `eth0`.
pub fn bridge_lab(tag: &str, hosts: &[&str]) -> Result<Netns, String> {
    bridge_lab_with(tag, hosts, bridge_addr)
}

/// As [`bridge_lab`], but IPv6 only: host `i` at fd00:9::(11 + i)/64
/// (usable at once: no duplicate address detection), with an on-link
/// default route, and no IPv4 address at all.
pub fn bridge_lab_v6(tag: &str, hosts: &[&str]) -> Result<Netns, String> {
    let lab = bridge_lab_with(tag, hosts, |i| format!("{} nodad", bridge_addr_v6(i)))?;
    for host in hosts {
        lab.ip(host, "-6 route add default dev eth0");
    }
    Ok(lab)
}

/// Host `i`'s address on the IPv6 bridge lab, with its prefix.
pub fn bridge_addr_v6(i: usize) -> String {
    format!("fd00:9::{}/64", 11 + i)
}

fn bridge_lab_with(
    tag: &str,
    hosts: &[&str],
    addr: impl Fn(usize) -> String,
) -> Result<Netns, String> {
    let mut names = vec!["lan"];
    names.extend_from_slice(hosts);
    let lab = Netns::create(tag, &names)?;
    lab.ip("lan", "link add br0 type bridge mcast_snooping 0");
    lab.ip("lan", "link set br0 up");
    for (i, host) in hosts.iter().enumerate() {
        lab.ip(
            host,
            &format!(
                "link add eth0 type veth peer name p{i} netns {}",
                lab.ns("lan")
            ),
        );
        lab.ip("lan", &format!("link set p{i} master br0 up"));
        lab.ip(host, &format!("addr add {} dev eth0", addr(i)));
        lab.ip(host, "link set eth0 up");
    }
    Ok(lab)
}

/// Host `i`'s address on the bridge lab, with its prefix.
pub fn bridge_addr(i: usize) -> String {
    format!("10.9.0.{}/24", 11 + i)
}

/// Runs `program args`, panicking with its stderr on failure.
pub fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The lab, or `None` (printed) when it cannot run and `skip_env` is set
/// to 1; otherwise a lab that cannot run fails the test.
pub fn lab_or_skip<T>(built: Result<T, String>, skip_env: &str) -> Option<T> {
    match built {
        Ok(lab) => Some(lab),
        Err(reason) if std::env::var_os(skip_env).is_some_and(|v| v == "1") => {
            println!("SKIPPED ({skip_env}=1): {reason}");
            None
        }
        Err(reason) => panic!(
            "the lab cannot run: {reason}; run as root (as .ci/run does) or set \
             {skip_env}=1 to skip it knowingly"
        ),
    }
}
