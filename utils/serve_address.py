"""The address a server is to listen on, checked before anything is loaded (issue 30, case 6).

``app.py --host H --port P`` used to load the model, then fail inside Gradio with a traceback (a bad host
reported as "Cannot find empty port"). :func:`address_problem` finds each case first, by resolving the host
and binding a socket to the address for a moment, as the server will.

This module imports nothing of the project.
"""

from __future__ import annotations

import errno
import socket

PORTS = range(1, 65536)
"""The TCP ports a server can listen on."""


def address_problem(host: str, port: int) -> str | None:
    """Why a server cannot listen on ``host``:``port`` (one line naming --host or --port and what to do), or None."""
    if port not in PORTS:
        return f"--port {port}: not a TCP port; choose one from 1 to 65535 (e.g. 7860)"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        return (f"--host {host}: cannot be resolved to an address of this machine ({err}); use 127.0.0.1 (this "
                "machine only) or 0.0.0.0 (every interface)")
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            return f"--port {port}: already in use on {host} (another server, or another app.py); choose another --port"
        if err.errno == errno.EADDRNOTAVAIL:
            return (f"--host {host}: not an address of this machine; use 127.0.0.1 (this machine only) or 0.0.0.0 "
                    "(every interface)")
        if err.errno == errno.EACCES:
            return f"--port {port}: needs administrator rights (ports below 1024); choose a port from 1024 up"
        return f"--host {host} --port {port}: cannot listen there ({err.strerror or err}); choose another address"
    return None
