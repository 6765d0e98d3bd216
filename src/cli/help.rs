//! The commands' help texts (`-h`, `--help`), one constant each.

/// Top-level usage.
pub const MAIN_HELP: &str = "\
tinynode: a tiny peer-to-peer node

Usage: tinynode [-v] COMMAND [OPTIONS]

Commands:
  code                    print a fresh meeting code (7 words, 70 bits)
  demo                    run a small network on this machine and show it working
  connect CODE --listen ADDR
                          reach a member's exposed TCP service at a local address
  doctor                  tell what this network allows: NAT, hairpinning, relays
  expose CODE --tcp|--udp [NAME=]HOST:PORT
                          let members reach a TCP or UDP service of this host
  id                      print this node's key (for --allow)
  join CODE               join a meeting: find the other members and chat with them
  pipe CODE               pipe stdin/stdout to another member running pipe
  receive CODE            fetch what a member sends with the code
  send PATH...            send files and directories: prints a code for receive
  serve                   run a DHT node that also answers STUN (alias: bootstrap)
  stun SERVER[:PORT]...   print this host's public address as STUN servers see it

Options:
  -v, --verbose   debug logs on stderr (same as DEBUG=true)
  -h, --help      this help; COMMAND --help for a command's options
  -V, --version   print the version

Environment:
  DEBUG=true            debug logs: STUN queries, DHT bootstrap, lookups, announces
  MEETING_CODE=CODE     the meeting code when `join` is given none
  TINYNODE_BOOTSTRAP    comma-separated bootstrap nodes when none is given
  TINYNODE_MAINLINE_BOOTSTRAP
                        comma-separated Mainline DHT nodes replacing the
                        public routers when no --mainline-bootstrap is given
";

/// `tinynode expose --help`.
pub const EXPOSE_HELP: &str = "\
Usage: tinynode expose CODE [--tcp [NAME=]HOST:PORT]... [--udp [NAME=]HOST:PORT]...
                       [--allow KEY]... [--allow-file PATH]... [join's options]

Joins the meeting CODE like `join` and lets its members reach the TCP
services named with --tcp, through any NAT, with no port opened: each
connection a member's `tinynode connect` accepts becomes one stream to
this node, which connects to the service and joins the two (bytes both
ways, each side's end of input passed on, a reset or a refused service
passed back as a reset). Only the services given here are ever connected
to, never an address a member names.

Without --allow or --allow-file, anyone who knows the code reaches the
services: it says so at start. Keep the code out of `ps` with
MEETING_CODE.

  tinynode expose CODE --tcp ssh=127.0.0.1:22 --allow 3f…(64 hex digits)

Options:
  --tcp [NAME=]HOST:PORT  a TCP service (NAME defaults to the port; repeatable)
  --udp [NAME=]HOST:PORT  a UDP service (WireGuard, a game): each client's
                          datagrams travel unordered and unreliable, in a
                          flow of their own with a socket of their own here
  --allow KEY             only this member (`tinynode id` prints its key; repeatable)
  --allow-file PATH       only the members whose keys the file lists, one per
                          line (# starts a comment)
  --json                  events as JSON lines on stdout
  and join's --bootstrap, --mainline-bootstrap, --no-mainline, --no-lan,
  --no-relay, --stun, --bind, --identity
";

/// `tinynode connect --help`.
pub const CONNECT_HELP: &str = "\
Usage: tinynode connect CODE [--listen ADDR] [--udp-listen ADDR] [--service NAME] [--peer ID]
                        [--allow KEY]... [--allow-file PATH]... [join's options]

Joins the meeting CODE like `join`, listens for TCP connections at ADDR,
and forwards each one to a member running `tinynode expose` with the same
code, to its service NAME (not needed when it offers one):

  tinynode connect CODE --listen 127.0.0.1:2222 --service ssh
  ssh -p 2222 127.0.0.1

Connections accepted before a member that exposes is connected wait for
it (at most 30 s, at most 256 of them).

Options:
  --listen ADDR       the local address to accept TCP connections at
  --udp-listen ADDR   the local address UDP clients send to (a flow per
                      client address; datagrams that arrive while no
                      member exposes are dropped)
  --service NAME      the service to reach
  --peer ID           only this member (its node ID or its first hex digits)
  --allow KEY         only this member (`tinynode id` prints its key; repeatable)
  --allow-file PATH   only the members whose keys the file lists
  --json              events as JSON lines on stdout
  and join's --bootstrap, --mainline-bootstrap, --no-mainline, --no-lan,
  --no-relay, --stun, --bind, --identity
";

/// `tinynode id --help`.
pub const ID_HELP: &str = "\
Usage: tinynode id [--identity PATH] [--json]

Prints this node's key (its node ID, 64 hex digits) and its short form:
what other members give to --allow. Without --identity a fresh key is
made and forgotten, so give the --identity PATH the node runs with.
";

/// `tinynode send --help`.
pub const SEND_HELP: &str = "\
Usage: tinynode send PATH... | - [--code CODE] [--once | --receivers N]
                     [--allow KEY]... [--allow-file PATH]... [join's options]

Offers files and directory trees (empty files and directories, Unicode
names and the executable bit kept) to whoever runs `tinynode receive`
with the code it prints, directly between the two machines, encrypted,
with nobody's server in the path. Each file is offered with its size, its
SHA-256 and a hash per 1 MiB chunk: the receiver checks every chunk, and
an interrupted `receive` run again fetches only what is missing.

`send -` sends standard input as one file named `stdin` (read to its
end first, into a temporary file, so that it can be hashed and resumed);
`receive --stdout` writes it out.

Several receivers may use the code at once, each at its own pace; `send`
exits 0 once every receiver that started has confirmed. A receiver that
has not connected by then finds nobody: when you know how many will come,
say so with --receivers N, and `send` waits for all N.

Options:
  --code CODE        use this code (else MEETING_CODE, else a fresh one)
  --once             exit after the first receiver confirmed (--receivers 1)
  --receivers N      exit once N receivers confirmed (1 to 10000), even if
                     others are under way
  --allow KEY        only this member may receive (repeatable)
  --allow-file PATH  only the members whose keys the file lists
  --json             JSON lines on stderr: code, offer, receiver,
                     progress, receiver_done, done, error
  and join's --bootstrap, --mainline-bootstrap, --no-mainline, --no-lan,
  --no-relay, --stun, --bind, --identity
";

/// `tinynode receive --help`.
pub const RECEIVE_HELP: &str = "\
Usage: tinynode receive CODE [--out DIR | --stdout] [--overwrite] [--yes]
                        [--allow KEY]... [--allow-file PATH]... [join's options]

Fetches everything the member running `tinynode send` with this code
offers into DIR (default: the current directory). Before any data it
shows the list (names, count, total size) and asks, when stdin is a
terminal, unless --yes.

Safe on disk: only relative paths inside DIR are taken (absolute paths,
`..` and anything through a symbolic link refuse the whole offer); nothing
existing is overwritten without --overwrite (the command stops first and
names the conflicts); each file is written to `.NAME.tinynode-part` beside
it and renamed into place only once its SHA-256 checks out. Run the same
command again after an interruption and only what is missing is fetched.
Exits 0 once every file is in place and verified; non-zero with the
reason otherwise (a full disk, a refused offer, a chunk that fails its
hash twice).

Options:
  --out DIR          where the files go (default: .)
  --stdout           write the offer's one file to stdout, each chunk once
                     it is verified (nothing on disk; a chunk failing its
                     hash fails the transfer, and exit 1 if the whole file
                     does not match)
  --overwrite        replace files that are in the way
  --yes, -y          accept without asking
  --allow KEY        only receive from this member (repeatable)
  --allow-file PATH  only from the members whose keys the file lists
  --json             JSON lines on stderr: offer, progress, file_done,
                     done, error
  and join's --bootstrap, --mainline-bootstrap, --no-mainline, --no-lan,
  --no-relay, --stun, --bind, --identity
";

/// `tinynode join --help`.
/// Help for `tinynode pipe`.
pub const PIPE_HELP: &str = "\
Usage: tinynode pipe CODE [--peer ID] [--timeout SECONDS] [join's options]

Joins the meeting CODE like `join` and waits for another member running
`pipe` (members running `join` are not partners), however late it starts.
Then stdin goes to the partner and the partner's bytes come out on stdout,
both directions at once, binary-safe, over an encrypted data channel:

  tar c dir | tinynode pipe CODE        # on one machine
  tinynode pipe CODE | tar x            # on the other

End of stdin finishes our half; the command exits 0 once both halves are
finished and every byte is written out, and non-zero with the reason when
the partner leaves or resets mid-stream. A slow reader on either side
slows the writer on the other. stdout carries only the partner's bytes:
status (found members, the path, bytes and rate) and errors go to stderr,
the progress as one line rewritten in place on a terminal.

Options:
  --peer ID          only this member (its node ID or its first hex digits)
  --timeout SECONDS  give up (exit 1) when no partner is found in time
  --allow KEY        only this member (`tinynode id` prints its key; repeatable)
  --allow-file PATH  only the members whose keys the file lists, one per line
  --json             status as JSON lines on stderr: pipe_waiting,
                     pipe_found, pipe_connected (peer, addr, family,
                     path direct or relay), path_changed (the same
                     fields), pipe_progress (every 5 s), pipe_done, error
  and join's --bootstrap, --mainline-bootstrap, --no-mainline, --no-lan,
  --no-relay, --stun, --bind, --identity
";

pub const JOIN_HELP: &str = "\
Usage: tinynode join CODE [--bootstrap ADDR]... [--mainline-bootstrap ADDR]...
                          [--no-mainline] [--no-lan] [--no-relay] [--stun ADDR]... [--bind ADDR]
                          [--identity PATH] [--json] [--no-stdin] [--keep-running]

Joins the meeting CODE (or $MEETING_CODE, which other users of the host
cannot read in ps; make a strong code with `tinynode code`: a code
estimated under 50 bits gets a warning) and finds the other members with
no server of ours, three ways at once: on the local network (a sealed
multicast beacon, on by default), through the BitTorrent Mainline DHT (on
by default; its nodes see members' IP addresses, as for any torrent), and
through tinynode DHT nodes given with --bootstrap. It learns the public address (from the
STUN servers when given, otherwise from DHT answers), announces itself,
finds the other members and opens an encrypted WebRTC data channel to each. Lines typed on stdin go
to every connected member; their messages are printed as `<peer>: text`.
Ctrl-C closes the channels and exits 0.

Options:
  --bootstrap ADDR   tinynode DHT node to join through, repeatable (default
                     port 3478; default: $TINYNODE_BOOTSTRAP, comma-separated)
  --mainline-bootstrap ADDR
                     Mainline DHT node to join through, repeatable (default
                     port 6881); replaces the node cache and the public
                     routers (default: $TINYNODE_MAINLINE_BOOTSTRAP)
  --no-mainline      do not use the Mainline DHT
  --no-lan           send no LAN beacons and listen for none
  --no-relay         do not relay for other members (relaying is on by
                     default: a member connected to two others forwards
                     their encrypted traffic when their NATs need it)
  --stun ADDR        STUN server for the public address, repeatable
  --bind ADDR        local UDP address, once per family (default 0.0.0.0:0
                     and [::]:0, the second only where the host has IPv6)
  --identity PATH    key file: loaded, or created (mode 0600) if missing;
                     without it a fresh identity each run
  --json             one JSON object per line on stdout (logs stay on stderr):
                     started, weak_code, public_address, nat, mainline_bootstrapped,
                     peer_discovered, peer_lost, connected (with path
                     direct or relay), path_changed, message,
                     disconnected, connect_failed, error
  --no-stdin         do not read stdin (for scripts that only listen)
  --keep-running     stay in the meeting when stdout is closed (by default
                     `join` leaves, closing its channels, once nobody reads
                     what it prints)
  -h, --help         this help
";

/// `tinynode code --help`.
pub const CODE_HELP: &str = "\
Usage: tinynode code

Prints a fresh meeting code: 7 words drawn at random from a built-in list
of 1024 (70 bits), joined with '-', such as
  hazel-orbit-tiger-quilt-mango-sonic-ferry
Anyone who learns the code can join the meeting, and anyone who sees the
meeting's traffic can test guesses at it offline, so a code you make up
(\"blue fox\": about 20 bits) falls in seconds; `join` warns when a code
is estimated under 50 bits. Pass the code in MEETING_CODE rather than on
the command line where other users of the host can read it (ps).
";

/// `tinynode stun --help`.
pub const STUN_HELP: &str = "\
Usage: tinynode stun SERVER[:PORT]... [--bind ADDR] [--timeout SECS] [--json]

Asks the STUN servers, one after another, for the address this host's
requests come from. Exits 0 and prints the address when one answers;
exits 1 naming every server tried when none does.

Arguments:
  SERVER[:PORT]    host name, IPv4 or [IPv6] address; port 3478 by default

Options:
  --bind ADDR      local address to send from (default 0.0.0.0:0, or [::]:0
                   when the servers are IPv6)
  --timeout SECS   how long to wait for each server before trying the next
                   (default 5; requests are retransmitted on the RFC 5389
                   schedule within it)
  --json           print one JSON object per line on stdout
  -h, --help       this help
";

/// `tinynode doctor --help`.
pub const DOCTOR_HELP: &str = "\
Usage: tinynode doctor [--bootstrap ADDR]... [--mainline-bootstrap ADDR]...
                       [--no-mainline] [--bind ADDR] [--json]

Tells, within 10 seconds, what this network allows: the socket, which
bootstrap sources answered and how fast, the public address and how many
observers saw it, the NAT's mapping (one public port for every peer, or
a new one per peer), whether the NAT hairpins, which bootstrap nodes
relay for this host, and a verdict in plain words. Joins no meeting.

Exit status: 0 when direct connections are likely, 1 when a relay will be
needed for some peers, 2 when no bootstrap source answered, 3 when too few
observers answered to classify the NAT.

Options:
  --bootstrap ADDR   tinynode DHT node to ask, repeatable (also probed as a
                     relay)
  --mainline-bootstrap ADDR
                     Mainline DHT node to ask instead of the public
                     routers, repeatable (its many nodes are the observers
                     that tell the NAT's mapping)
  --no-mainline      do not use the Mainline DHT
  --bind ADDR        local UDP address, once per family (default 0.0.0.0:0
                     and [::]:0, the second only where the host has IPv6)
  --json             one JSON object (event doctor) on stdout
  -h, --help         this help
";

/// `tinynode demo --help`.
pub const DEMO_HELP: &str = "\
Usage: tinynode demo [--nodes N]

Starts a serve node and N members (default 3, at most 16) with a random
meeting code on 127.0.0.1, as child processes; shows discovery and
connections as they happen, sends a message across every pair, prints a
summary, and exits 0 on success or 1 with the reason. Needs no outside
servers.

Options:
  --nodes N     members to start (2..=16, default 3)
  -h, --help    this help
";

/// `tinynode serve --help`.
pub const SERVE_HELP: &str = "\
Usage: tinynode serve [--bind ADDR]... [--bootstrap ADDR]... [--identity PATH] [--relay]
                      [--relay-rate RATE] [--relay-total RATE] [--relay-pairs N]
                      [--mainline-bootstrap ADDR]... [--no-mainline] [--json]
       tinynode bootstrap ...

Runs a DHT node that stores meeting records, relays signals and answers
STUN Binding requests, until Ctrl-C (SIGINT) or SIGTERM, then exits 0.
Prints its node ID and the addresses it listens on. As a service, see
contrib/tinynode-serve.service (a hardened systemd unit).

Options:
  --bind ADDR        address to listen on, once per family (default
                     0.0.0.0:3478 and [::]:3478, the second only where the
                     host has IPv6)
  --bootstrap ADDR   other DHT node to join through, repeatable
  --identity PATH    key file (created with mode 0600 if missing): the node
                     keeps its node ID across restarts; without it a fresh
                     identity each run
  --relay            also relay, blindly, for members whose NATs cannot reach
                     each other: it pairs two bindings that present the same
                     token and forwards their encrypted datagrams, within
                     quotas (protocol-spec.md §12.5); a relay announces
                     itself in the Mainline DHT, so members of meetings
                     that name no serve node can find it
  --relay-rate RATE  bytes a second one pair may send through, both ways
                     together (default 256k: right for strangers; your own
                     relay may take `unlimited`); RATE is a number with an
                     optional k, M or G (powers of 1024), at least 1k
  --relay-total RATE bytes a second through the whole relay (default 2M)
  --relay-pairs N    most pairs at once, 1 to 1024 (default 64)
  --mainline-bootstrap ADDR
                     Mainline DHT node to announce the relay through,
                     repeatable (default: the public routers)
  --no-mainline      do not announce the relay in the Mainline DHT
  --json             print events as one JSON object per line on stdout:
                     started, public_address, bootstrapped,
                     mainline_bootstrapped, relay_listed (nodes: the relay
                     announced itself in the Mainline directory), error
  -h, --help         this help

Logs go to stderr (the journal, under systemd); DEBUG=true or -v logs every
step: STUN answers, DHT requests, relay bindings, dropped datagrams.
";
