"""Alerts as RFC 5424 syslog messages over UDP (one datagram each) or TCP (RFC 6587 octet counting).

The severity is the alert's priority (Falco's priorities are syslog's eight severities, in the same order);
the facility is configurable (`user` by default). Rule, priority, cluster and auditID also travel as
structured data, so a collector can filter without parsing the message.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime

from kubetrail.alert.outputs.base import OutputError
from kubetrail.detect.alert import Alert

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
SD_ID = "kubetrail@32473"
"""Structured-data ID: a name under the enterprise number RFC 5612 reserves for documentation and examples."""
APP_NAME = "kubetrail"
MAX_UDP_BYTES = 8192
NIL = "-"


def _header_token(text: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most `limit` characters, `-` when empty."""
    cleaned = "".join(ch for ch in text if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or NIL


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def timestamp(time_ns: int) -> str:
    """RFC 5424 TIMESTAMP: UTC with at most six fraction digits (`2018-10-25T14:09:12.581541Z`)."""
    moment = datetime.fromtimestamp(time_ns // 1_000_000_000, UTC)
    micros = (time_ns % 1_000_000_000) // 1000
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros:06d}Z"


def format_message(alert: Alert, *, facility: int = 1, hostname: str = "", fmt: str = "text") -> bytes:
    """One RFC 5424 message (no framing); MSG is the alert's text output, or its Falco JSON with `fmt='json'`."""
    pri = facility * 8 + int(alert.priority)
    params = [("rule", alert.rule), ("priority", alert.priority.label), ("auditID", alert.audit_id)]
    if alert.cluster:
        params.append(("cluster", alert.cluster))
    data = "[" + SD_ID + "".join(f' {key}="{_sd_value(value)}"' for key, value in params) + "]"
    stamp = timestamp(alert.time_ns) if alert.time_ns > 0 else NIL
    header = (
        f"<{pri}>1 {stamp} {_header_token(hostname or alert.hostname, 255)} {APP_NAME} "
        f"{os.getpid()} {_header_token(alert.rule, 32)} {data} "
    )
    body = alert.to_falco_json() if fmt == "json" else alert.message.encode()
    return header.encode() + body.replace(b"\n", b" ")


def frame_octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet-counting: `LENGTH SP MESSAGE`."""
    return str(len(message)).encode() + b" " + message


class SyslogOutput:
    """Sends to host:port; a TCP connection the collector closed is reopened before the next batch, and a
    broken one once per batch before giving up."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        protocol: str = "udp",
        facility: str = "user",
        hostname: str = "",
        fmt: str = "text",
        timeout: float = 5.0,
        name: str = "syslog",
    ) -> None:
        if protocol not in ("udp", "tcp"):
            raise OutputError(f"protocol {protocol!r} is not udp or tcp", output=name)
        if facility not in FACILITIES:
            raise OutputError(f"unknown facility {facility!r}", output=name, hint=", ".join(FACILITIES))
        self.name = name
        self.address = (host, port)
        self.protocol = protocol
        self.facility = FACILITIES[facility]
        self.hostname = hostname or socket.gethostname()
        self.fmt = fmt
        self.timeout = timeout
        self._sock: socket.socket | None = None

    def _peer_closed(self, sock: socket.socket) -> bool:
        """True when a TCP peer has closed (a restarted collector): writing would vanish without an error."""
        try:
            sock.setblocking(False)
            return sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(self.timeout)

    def _connect(self) -> socket.socket:
        if self._sock is not None and self.protocol == "tcp" and self._peer_closed(self._sock):
            self._drop()
        if self._sock is None:
            kind = socket.SOCK_DGRAM if self.protocol == "udp" else socket.SOCK_STREAM
            info = socket.getaddrinfo(*self.address, type=kind)[0]
            sock = socket.socket(info[0], kind)
            sock.settimeout(self.timeout)
            try:
                sock.connect(info[4])
            except OSError:
                sock.close()
                raise
            self._sock = sock
        return self._sock

    def send(self, alerts: Sequence[Alert]) -> None:
        messages = [format_message(a, facility=self.facility, hostname=self.hostname, fmt=self.fmt) for a in alerts]
        for attempt in (1, 2):
            try:
                sock = self._connect()
                if self.protocol == "udp":
                    for message in messages:
                        sock.send(message[:MAX_UDP_BYTES])
                else:
                    sock.sendall(b"".join(frame_octet_counted(message) for message in messages))
                return
            except OSError as error:
                self._drop()
                if attempt == 2:
                    host, port = self.address
                    raise OutputError(
                        f"cannot send to {host}:{port}/{self.protocol}: {error}", output=self.name
                    ) from None

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        self._drop()
