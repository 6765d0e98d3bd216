"""Echo services and their clients for tests/forward_lab.rs, run inside the
NAT lab's namespaces (python3, standard library only).

  forward_echo.py serve TCP_PORT UDP_PORT
      TCP echo (answers until the client half-closes, then half-closes) and
      UDP echo on 127.0.0.1; prints "ready" once both listen.
  forward_echo.py tcp PORT CONNECTIONS BYTES
      CONNECTIONS clients at once, each sends BYTES random bytes, shuts
      down its write side, reads the whole echo and compares; prints
      "tcp ok N" or "tcp FAILED ...".
  forward_echo.py udp PORT DATAGRAMS
      one client, a datagram at a time, each echoed (sent again after 1 s
      without an echo, at most 10 times); prints "udp ok N" or "udp FAILED".
  forward_echo.py refused PORT
      connects, sends, and expects a reset (not a clean end); prints
      "refused ok" or "refused FAILED ...".
"""

import os
import socket
import sys
import threading


def serve(tcp_port, udp_port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", tcp_port))
    listener.listen(512)
    datagrams = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    datagrams.bind(("127.0.0.1", udp_port))

    def echo(connection):
        while True:
            data = connection.recv(65536)
            if not data:
                break
            connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        connection.close()

    def accept():
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    def udp_echo():
        while True:
            data, source = datagrams.recvfrom(65536)
            datagrams.sendto(data, source)

    threading.Thread(target=accept, daemon=True).start()
    threading.Thread(target=udp_echo, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


def tcp(port, connections, size):
    results = [None] * connections

    def one(index):
        try:
            data = os.urandom(size)
            client = socket.create_connection(("127.0.0.1", port), timeout=300)
            sender = threading.Thread(
                target=lambda: (client.sendall(data), client.shutdown(socket.SHUT_WR))
            )
            sender.start()
            received = []
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                received.append(chunk)
            sender.join()
            results[index] = b"".join(received) == data
        except OSError as error:
            results[index] = repr(error)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    good = sum(1 for r in results if r is True)
    if good == connections:
        print("tcp ok", good)
    else:
        print("tcp FAILED", good, [r for r in results if r is not True][:3])


def udp(port, count):
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(1)
    good = 0
    for index in range(count):
        datagram = ("datagram %d " % index).encode() + b"y" * (index * 10)
        for _ in range(10):
            client.sendto(datagram, ("127.0.0.1", port))
            try:
                if client.recv(65536) == datagram:
                    good += 1
                    break
            except socket.timeout:
                pass
    print("udp ok" if good == count else "udp FAILED", good)


def refused(port):
    try:
        # The member accepts, then resets once the exposing side refuses.
        # The reset may come before our bytes leave (then sendall sees it)
        # or, on a busy host, before connect has even reported success
        # (then connect sees it). Nothing listening would be
        # ConnectionRefusedError: a failure.
        client = socket.create_connection(("127.0.0.1", port), timeout=60)
        client.sendall(b"hello")
        data = client.recv(16)
        print("refused FAILED: got", repr(data))
    except (ConnectionResetError, BrokenPipeError):
        print("refused ok")
    except OSError as error:
        print("refused FAILED:", repr(error))


if __name__ == "__main__":
    command, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    {"serve": serve, "tcp": tcp, "udp": udp, "refused": refused}[command](*args)
