"""A loopback endpoint's side of HTTP/1.1, for the lean client's tests: reading one request."""

from __future__ import annotations

import socket


def read_request(connection: socket.socket) -> bytes | None:
    """One whole request (head and body, by its content-length), or None if the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body
