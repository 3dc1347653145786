"""One Redis connection whose commands are sent at once and whose replies are read when needed.

The drift loop keeps Redis busy on the other core while it decodes: a batch's join read is
sent, then the previous batch's commit script behind it on the same connection, before the
batch's events are decoded. Redis runs the commands of one connection in order, so the read is
answered first and the commit lands before the next batch's read. redis-py's calls wait for
their reply, so this keeps a connection from the client's pool and reads replies in order:
``reply(ticket)`` reads every earlier reply first and keeps it for its own ticket; replies are
asked for in the order their commands were sent (one left unasked, after a failure, is dropped).

Commands are packed by hiredis, which also parses the replies (redis-py uses it when it is
installed): in Python, packing a thousand-entry commit and reading three thousand-field HMGET
replies took ~15% of the loop (``docs/decisions.md``).

A Redis error reply is raised by the ``reply`` of its own command. A broken connection fails
every command in flight; the next ``send`` takes a fresh connection.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis


class RedisLine:
    """Commands in flight on one connection, replies in order."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._conn: Any = None
        self._sent = 0  # tickets issued
        self._read = 0  # replies read
        self._replies: dict[int, Any] = {}  # read but not yet asked for
        self._broken: redis.RedisError | None = None  # fails the tickets sent before it

    def send(self, *args: Any) -> int:
        """Send a command; its ticket for ``reply``. Raises ``redis.RedisError``."""
        if self._conn is None:
            self._conn = self.client.connection_pool.get_connection()
            self._broken = None
        try:
            self._conn.send_packed_command([hiredis.pack_command(args)])
        except redis.RedisError as exc:
            self._drop(exc)
            raise
        self._sent += 1
        return self._sent

    def reply(self, ticket: int) -> Any:
        """The reply of a ticket (read once); raises its error reply or the connection's error."""
        while self._read < ticket and self._broken is None:
            try:
                self._replies[self._read + 1] = self._conn.read_response()
            except redis.ResponseError as exc:
                self._replies[self._read + 1] = exc
            except redis.RedisError as exc:
                self._drop(exc)
                break
            self._read += 1
        for older in [t for t in self._replies if t < ticket]:  # abandoned after a failure
            del self._replies[older]
        if ticket in self._replies:
            found = self._replies.pop(ticket)
            if isinstance(found, redis.ResponseError):
                raise found
            return found
        raise self._broken or redis.ConnectionError(f"no reply for command {ticket}")

    def _drop(self, exc: redis.RedisError) -> None:
        """The connection broke: every command in flight on it has failed."""
        if self._conn is not None:
            self._conn.disconnect()
            self.client.connection_pool.release(self._conn)
        self._conn = None
        self._broken = exc
        self._read = self._sent
        self._replies.clear()
