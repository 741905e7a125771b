"""Keep tests off the network: every connect but a loopback one is refused.

Built on pytest-socket (in the ``testing`` extra): a refused connect raises its
``SocketConnectBlockedError``, a ``RuntimeError`` that no HTTP library mistakes
for an ordinary connection failure, so a test that tries to leave the machine
fails loudly instead of reporting "could not connect".
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

#: Where tests may connect: the sandbox and other in-process servers.
LOOPBACK = ("127.0.0.0/8", "::1/128")


@contextmanager
def loopback_only() -> Iterator[None]:
    """Inside the block, ``socket.connect`` to any address outside loopback raises.

    Unix sockets stay allowed. Whatever guard was in place before (pytest-socket's
    own ``--allow-hosts``, say) is put back afterwards.
    """
    from pytest_socket import socket_allow_hosts

    before_class, before_connect = socket.socket, socket.socket.connect
    socket_allow_hosts(list(LOOPBACK), allow_unix_socket=True)
    try:
        yield
    finally:
        socket.socket = before_class  # type: ignore[misc]
        socket.socket.connect = before_connect  # type: ignore[method-assign]
