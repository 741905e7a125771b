"""A loopback Mirakl Connect that answers as fast as a socket can: ``python loopback.py``.

Run in a child process (its cost stays out of the measured process), it prints its
port and serves until killed. Every ``POST .../cancel`` gets the documented 202 body
``{action_id, tracking_id}`` (v2-cancelOrderLines), ``POST .../oauth/token`` an
OAuth2 client-credentials token, anything else 404. No checking, no state: the
benchmark measures the client, not the server. HTTP/1.1 keep-alive, one thread per
connection (requests keeps one connection per session and thread).
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import threading

_TOKEN = json.dumps({"access_token": "bench-token", "token_type": "Bearer", "expires_in": 3599})
_MISSING = json.dumps({"code": "DATA_NOT_FOUND", "message": "no such route"})
_ids = itertools.count(1)


def _answer(status: str, body: str) -> bytes:
    data = body.encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + data


def _respond(request_line: bytes) -> bytes:
    method, _, rest = request_line.partition(b" ")
    path = rest.partition(b" ")[0]
    if method == b"POST" and path.endswith(b"/cancel"):
        action = f"00000000-0000-4000-8000-{next(_ids):012d}"
        return _answer("202 Accepted", json.dumps({"action_id": action, "tracking_id": action}))
    if method == b"POST" and path.endswith(b"/oauth/token"):
        return _answer("200 OK", _TOKEN)
    return _answer("404 Not Found", _MISSING)


def _serve_connection(connection: socket.socket) -> None:
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = b""
    with connection:
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            buffer = buffer[length:]
            connection.sendall(_respond(head.split(b"\r\n", 1)[0]))


def serve(port: int = 0) -> None:
    """Listen on 127.0.0.1:``port`` (0: a free one), print the port, serve forever."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_serve_connection, args=(connection,), daemon=True).start()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
