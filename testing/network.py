"""Keep tests off the network: every connect but a loopback one is refused.

Built on pytest-socket (in the ``testing`` extra): a refused connect raises its
``SocketConnectBlockedError``, a ``RuntimeError`` that no HTTP library mistakes
for an ordinary connection failure, so a test that tries to leave the machine
fails loudly instead of reporting "could not connect".
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Where tests may connect: the sandbox and other in-process servers.
LOOPBACK = ("127.0.0.0/8", "::1/128")


@contextmanager
def loopback_only() -> Iterator[None]:
    """Inside the block, ``socket.connect`` or ``connect_ex`` to any address outside
    loopback raises.

    Unix sockets stay allowed. Whatever guard was in place before (pytest-socket's
    own ``--allow-hosts``, say) is put back afterwards.
    """
    from pytest_socket import socket_allow_hosts

    before_class, before_connect = socket.socket, socket.socket.connect
    before_connect_ex = socket.socket.connect_ex
    socket_allow_hosts(list(LOOPBACK), allow_unix_socket=True)
    # pytest-socket guards connect only; connect_ex reaches the network as well.
    socket.socket.connect_ex = _guarded(before_connect_ex)  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket = before_class  # type: ignore[misc]
        socket.socket.connect = before_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = before_connect_ex  # type: ignore[method-assign]


def _guarded(connect_ex: Callable[[socket.socket, Any], int]) -> Callable[..., int]:
    """``connect_ex`` refusing what pytest-socket's guarded ``connect`` refuses."""
    from pytest_socket import SocketConnectBlockedError, host_from_connect_args

    networks = [ipaddress.ip_network(network) for network in LOOPBACK]

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        if hasattr(socket, "AF_UNIX") and sock.family == socket.AF_UNIX:
            return connect_ex(sock, address)
        host = host_from_connect_args((address,))
        try:
            allowed = host is not None and any(
                ipaddress.ip_address(host) in network for network in networks
            )
        except ValueError:  # a host name: pytest-socket refuses those too
            allowed = False
        if allowed:
            return connect_ex(sock, address)
        sock.close()  # as pytest-socket does: the error bypasses `except OSError` cleanup
        raise SocketConnectBlockedError(list(LOOPBACK), host)

    return guarded_connect_ex
