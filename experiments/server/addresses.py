"""Listen addresses: which are wildcards, and what a client here or on another machine connects to instead.

``--host 0.0.0.0``, ``::`` or ``*`` listens on every interface. A client on this machine reaches
such a server on loopback; students on other machines reach it by this machine's host name.
"""

from __future__ import annotations

import socket

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "*", ""})
LOOPBACK = "127.0.0.1"


def is_wildcard(host: str) -> bool:
    """Whether listening on ``host`` means every interface."""
    return host in WILDCARD_HOSTS


def local_address(host: str) -> str:
    """Where a client on this machine connects to a server listening on ``host``."""
    return LOOPBACK if is_wildcard(host) else host


def public_address(host: str) -> str:
    """Where clients on other machines connect to a server listening on ``host`` (this machine's name for a wildcard)."""
    return socket.gethostname() if is_wildcard(host) else host


def bindable(host: str) -> tuple[socket.AddressFamily, str]:
    """The socket family and address to bind to listen on ``host`` (``*`` as IPv4's any, ``::`` on IPv6)."""
    if host == "::" or (":" in host and not is_wildcard(host)):
        return socket.AF_INET6, host
    return socket.AF_INET, "" if is_wildcard(host) else host
