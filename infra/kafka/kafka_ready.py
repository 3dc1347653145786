"""Exit 0 when the Kafka broker at HOST:PORT answers a metadata request with at least one broker.

Used by `infra/kafka/kafka.sh` to decide that the broker is ready, which an open port alone does
not prove (the listener opens before the node is unfenced). Prefers confluent-kafka, the client
the services use; falls back to one hand-encoded Metadata v4 request over a socket so that a bare
`python3` without the project's virtualenv can still check.

Usage: python3 kafka_ready.py HOST:PORT [TIMEOUT_SECONDS]
"""

from __future__ import annotations

import socket
import struct
import sys

METADATA_API_KEY = 3
# Kafka 4 removed Metadata v0-v3 (KIP-896); v4 is the oldest it answers and the simplest to encode.
METADATA_VERSION = 4


def _ready_confluent(bootstrap: str, timeout: float) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    return bool(admin.list_topics(timeout=timeout).brokers)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def _ready_socket(bootstrap: str, timeout: float) -> bool:
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
    return correlation_id == 1 and broker_count > 0


def main(argv: list[str]) -> int:
    """Check once; print why not ready on stderr."""
    bootstrap = argv[1] if len(argv) > 1 else "127.0.0.1:9092"
    timeout = float(argv[2]) if len(argv) > 2 else 3.0
    try:
        import confluent_kafka  # noqa: F401

        check = _ready_confluent
    except ImportError:
        check = _ready_socket
    try:
        ready = check(bootstrap, timeout)
    except Exception as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    if not ready:
        print("not ready: metadata lists no broker yet", file=sys.stderr)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
