"""A Redis command sent now on a connection of its own, its reply read when it is needed.

The drift loop keeps Redis busy on the other core while it decodes: a batch's commit script is
sent before the next batch is read, and the next batch's join read is sent before its events
are decoded. redis-py's calls wait for their reply, so this takes a connection from the
client's pool, sends the command and returns; ``reply`` reads the answer and gives the
connection back. Errors are redis-py's (``redis.RedisError``); callers say what failed.

Commands on different connections are not ordered against each other: a caller that needs one
to see another's writes reads the first reply before sending the second.
"""

from __future__ import annotations

from typing import Any

import redis


class SentCommand:
    """One command in flight; ``reply()`` exactly once."""

    def __init__(self, client: redis.Redis, *args: Any) -> None:
        self._pool = client.connection_pool
        self._conn = self._pool.get_connection()
        try:
            self._conn.send_command(*args)
        except BaseException:
            self._conn.disconnect()
            self._pool.release(self._conn)
            raise

    def reply(self) -> Any:
        """Wait for the reply (a Redis error reply is raised as ``redis.ResponseError``)."""
        try:
            return self._conn.read_response()
        finally:
            self._pool.release(self._conn)
