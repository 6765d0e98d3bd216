#!/usr/bin/python3
"""A Mainline DHT testnet of an independent implementation (libtorrent,
Debian's python3-libtorrent) for tinynode's labs: test peer only.

    libtorrent_dht.py ADDR:PORT...

Starts one libtorrent DHT node per address (IPv6 as [addr]:port), each
bootstrapping from the first, then has every node ping every other, so
that the routing tables hold the testnet; prints "testnet ready" once
each node knows at least two others, then runs until its standard input closes.
Nodes accept private and unique-local addresses and several nodes per
IP, as a testnet must; otherwise libtorrent's defaults hold.
"""

import select
import sys
import time
import warnings

try:
    import libtorrent as lt
except ImportError:
    sys.exit("python3-libtorrent is missing: apt-get install python3-libtorrent")


def session(listen, bootstrap):
    return lt.session({
        "listen_interfaces": listen,
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_enforce_node_id": False,
        "alert_mask": lt.alert.category_t.dht_notification,
    })


def split(addr):
    """("ip", port) of "ip:port" or "[ipv6]:port"."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    addrs = sys.argv[1:]
    if not addrs:
        sys.exit(__doc__)
    sessions = [session(addrs[0], "")]
    sessions += [session(addr, addrs[0]) for addr in addrs[1:]]
    joined = set()
    deadline = time.time() + 30
    while len(joined) < len(sessions) - 1:
        if time.time() > deadline:
            sys.exit("the testnet did not bootstrap within 30 s")
        for i, s in enumerate(sessions):
            for alert in s.pop_alerts():
                if isinstance(alert, lt.dht_bootstrap_alert) and i > 0:
                    joined.add(i)
        time.sleep(0.1)
    hosts = [split(addr) for addr in addrs]
    for s in sessions:
        for host in hosts:
            s.add_dht_node(host)
    warnings.simplefilter("ignore", DeprecationWarning)
    # libtorrent keeps some answering nodes as replacements: two known
    # others per node are enough for lookups to find the rest.
    while min(s.status().dht_nodes for s in sessions) < min(2, len(sessions) - 1):
        if time.time() > deadline:
            sys.exit("the testnet's routing tables did not fill within 30 s")
        for s in sessions:
            s.pop_alerts()
        time.sleep(0.1)
    print("testnet ready", flush=True)
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 1.0)
        if ready and not sys.stdin.readline():
            return
        for s in sessions:
            s.pop_alerts()


if __name__ == "__main__":
    main()
