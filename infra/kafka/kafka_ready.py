"""Exit 0 when the Kafka broker at HOST:PORT answers a metadata request listing enough brokers.

Used by `infra/kafka/kafka.sh` to decide that the broker is ready, which an open port alone does
not prove (the listener opens before the node is unfenced). Prefers confluent-kafka, the client
the services use; falls back to one hand-encoded Metadata v4 request over a socket so that a bare
`python3` without the project's virtualenv can still check.

Usage: python3 kafka_ready.py HOST:PORT [TIMEOUT_SECONDS] [--brokers N] [--node ID] [--secured DIR]
  --brokers N   at least N brokers listed (default 1): a cluster knows all its members
  --node ID     broker ID itself listed: a restarted node is listed once it is unfenced
  --secured DIR ask over SASL_SSL as the admin principal, with DIR/ca.crt and DIR/users/admin
"""

from __future__ import annotations

import socket
import struct
import sys

METADATA_API_KEY = 3
# Kafka 4 removed Metadata v0-v3 (KIP-896); v4 is the oldest it answers and the simplest to encode.
METADATA_VERSION = 4


def _brokers_confluent(bootstrap: str, timeout: float, secured: str | None = None) -> set[int]:
    from confluent_kafka.admin import AdminClient

    conf = {"bootstrap.servers": bootstrap, "log_level": 0}
    if secured:
        with open(f"{secured}/users/admin", encoding="utf-8") as f:
            password = f.read().strip()
        conf.update(
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "admin",
                "sasl.password": password,
                "ssl.ca.location": f"{secured}/ca.crt",
            }
        )
    admin = AdminClient(conf)
    return set(admin.list_topics(timeout=timeout).brokers)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def _brokers_socket(bootstrap: str, timeout: float) -> set[int]:
    host, _, port = bootstrap.rpartition(":")
    client_id = b"streamops-ready"
    body = struct.pack(">hhih", METADATA_API_KEY, METADATA_VERSION, 1, len(client_id)) + client_id
    body += struct.pack(">ib", -1, 0)  # all topics (null array), no auto-creation
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _read_exact(sock, 4))
        reply = _read_exact(sock, size)
    correlation_id, _throttle_ms, broker_count = struct.unpack_from(">iii", reply, 0)
    if correlation_id != 1:
        raise ConnectionError(f"unexpected correlation id {correlation_id}")
    ids, at = set(), 12
    for _ in range(broker_count):  # node_id, host, port, rack (nullable string)
        (node_id,) = struct.unpack_from(">i", reply, at)
        (host_len,) = struct.unpack_from(">h", reply, at + 4)
        at += 6 + host_len + 4
        (rack_len,) = struct.unpack_from(">h", reply, at)
        at += 2 + max(rack_len, 0)
        ids.add(node_id)
    return ids


def main(argv: list[str]) -> int:
    """Check once; print why not ready on stderr."""
    args, options = [], {"--brokers": 1, "--node": None, "--secured": None}
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--secured":
            options[arg] = next(rest)
        elif arg in options:
            options[arg] = int(next(rest))
        else:
            args.append(arg)
    bootstrap = args[0] if args else "127.0.0.1:9092"
    timeout = float(args[1]) if len(args) > 1 else 3.0
    secured = options["--secured"]
    try:
        import confluent_kafka  # noqa: F401

        def brokers_of(bootstrap: str, timeout: float) -> set[int]:
            return _brokers_confluent(bootstrap, timeout, secured)
    except ImportError:
        if secured:
            print("not ready: a secured broker is checked with confluent-kafka", file=sys.stderr)
            return 1
        brokers_of = _brokers_socket
    try:
        brokers = brokers_of(bootstrap, timeout)
    except Exception as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    node, wanted = options["--node"], options["--brokers"]
    if node is not None and node not in brokers:
        print(f"not ready: metadata does not list broker {node} yet", file=sys.stderr)
        return 1
    if len(brokers) < wanted:
        print(f"not ready: metadata lists {len(brokers)} of {wanted} brokers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
