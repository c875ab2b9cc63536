"""RFC 5424 messages, checked against Debian's rsyslogd receiving them over UDP and TCP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubetrail.alert.outputs import OutputError, SyslogOutput, format_message
from kubetrail.alert.outputs.syslog import frame_octet_counted, timestamp
from kubetrail.detect.priority import Priority
from tests.alert.helpers import TIME_NS, make_alert

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
FIELDS = "%pri%|%syslogseverity%|%syslogfacility%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Rsyslog:
    udp: int
    tcp: int
    out: Path

    def lines(self, count: int, timeout: float = 15.0) -> list[list[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.out.exists():
                lines = self.out.read_text().splitlines()
                if len(lines) >= count:
                    return [line.split("|", 8) for line in lines]
            time.sleep(0.05)
        raise AssertionError(f"rsyslogd wrote {self.out.read_text() if self.out.exists() else 'nothing'}")


def start_rsyslog(tmp_path: Path, udp: int, tcp: int, out: Path) -> subprocess.Popen[bytes]:
    if not os.access(RSYSLOGD, os.X_OK):
        pytest.skip("rsyslogd is not installed (Debian package rsyslog)")
    config = tmp_path / "rsyslog.conf"
    config.write_text(
        f'global(workDirectory="{tmp_path}")\n'
        'module(load="imudp")\nmodule(load="imtcp")\n'
        f'input(type="imudp" address="127.0.0.1" port="{udp}")\n'
        f'input(type="imtcp" address="127.0.0.1" port="{tcp}")\n'
        f'template(name="fields" type="string" string="{FIELDS}\\n")\n'
        f'action(type="omfile" file="{out}" template="fields")\n'
    )
    process = subprocess.Popen(
        [RSYSLOGD, "-n", "-f", str(config), "-i", str(tmp_path / "rsyslogd.pid")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:  # ready once the TCP input accepts connections
        try:
            socket.create_connection(("127.0.0.1", tcp), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"rsyslogd did not start: {process.communicate()[0].decode(errors='replace')}")
            time.sleep(0.05)
    return process


def stop_rsyslog(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    out = tmp_path / "received.log"
    process = start_rsyslog(tmp_path, udp, tcp, out)
    try:
        yield Rsyslog(udp, tcp, out)
    finally:
        stop_rsyslog(process)


def test_message_layout_follows_rfc5424() -> None:
    alert = make_alert(rule='Exec "quoted" [x]', priority=Priority.CRITICAL)
    message = format_message(alert, facility=16, hostname="node-1").decode()
    header, _, rest = message.partition(" [")
    assert header == f'<130>1 2018-10-25T14:09:12.581541Z node-1 kubetrail {os.getpid()} Exec"quoted"[x]'
    assert rest.startswith('kubetrail@32473 rule="Exec \\"quoted\\" [x\\]" priority="Critical" auditID="a1b2c3"')
    assert message.endswith("] " + alert.message)


def test_timestamp_keeps_microseconds_only() -> None:
    assert timestamp(TIME_NS) == "2018-10-25T14:09:12.581541Z"


def test_octet_counting_frames_by_byte_length() -> None:
    assert frame_octet_counted("é".encode()) == b"2 \xc3\xa9"


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_rsyslog_receives_every_severity(rsyslog: Rsyslog, protocol: str) -> None:
    port = rsyslog.udp if protocol == "udp" else rsyslog.tcp
    output = SyslogOutput("127.0.0.1", port, protocol=protocol, facility="local0", hostname="kt-host")
    alerts = [make_alert(priority=priority, audit_id=f"id-{int(priority)}") for priority in Priority]
    output.send(alerts[:4])
    output.send(alerts[4:])
    output.close()
    rows = sorted(rsyslog.lines(len(alerts)), key=lambda row: int(row[1]))
    assert len(rows) == len(alerts)
    for priority, row in zip(Priority, rows, strict=True):
        pri, severity, facility, host, app, procid, msgid, data, msg = row
        assert (int(pri), int(severity), int(facility)) == (16 * 8 + int(priority), int(priority), 16)
        assert (host, app, procid, msgid) == ("kt-host", "kubetrail", str(os.getpid()), "Attach/ExecPod")
        assert f'auditID="id-{int(priority)}"' in data
        assert f'priority="{priority.label}"' in data
        assert 'cluster="prod"' in data
        assert msg == make_alert().message


def test_rsyslog_receives_json_messages_over_tcp(rsyslog: Rsyslog) -> None:
    output = SyslogOutput("127.0.0.1", rsyslog.tcp, protocol="tcp", fmt="json")
    output.send([make_alert(audit_id="j1")])
    output.close()
    (row,) = rsyslog.lines(1)
    assert '"auditID":"j1"' in row[8]
    assert int(row[2]) == 1  # the default facility is user


def test_tcp_to_a_closed_port_is_an_output_error() -> None:
    output = SyslogOutput("127.0.0.1", free_port(socket.SOCK_STREAM), protocol="tcp", timeout=1)
    with pytest.raises(OutputError, match="cannot send"):
        output.send([make_alert()])
    output.close()


def test_unknown_facility_is_refused() -> None:
    with pytest.raises(OutputError, match="facility"):
        SyslogOutput("127.0.0.1", 514, facility="local9")


def test_tcp_reconnects_when_the_collector_restarts(tmp_path: Path) -> None:
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    out = tmp_path / "received.log"
    process = start_rsyslog(tmp_path, udp, tcp, out)
    output = SyslogOutput("127.0.0.1", tcp, protocol="tcp")
    try:
        output.send([make_alert(audit_id="before")])
        Rsyslog(udp, tcp, out).lines(1)
        stop_rsyslog(process)
        process = start_rsyslog(tmp_path, udp, tcp, out)
        output.send([make_alert(audit_id="after")])
        rows = Rsyslog(udp, tcp, out).lines(2)
    finally:
        output.close()
        stop_rsyslog(process)
    assert ['auditID="before"' in rows[0][7], 'auditID="after"' in rows[1][7]] == [True, True]
