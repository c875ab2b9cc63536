"""The baseline `serve` is measured against: Starlette + uvicorn decoding each EventList with msgspec, and nothing
else (no store, no fsync, no detection). Prints `listening on http://HOST:PORT` once it serves.

Run: `python -m bench.bare_receiver [--http h11|httptools]`.
"""

from __future__ import annotations

import argparse
import socket

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kubetrail.model.event import EventList

_decoder = msgspec.json.Decoder(EventList)


async def audit(request: Request) -> Response:
    events = _decoder.decode(await request.body()).items
    return Response(b'{"accepted":%d}\n' % len(events), media_type="application/json")


app = Starlette(routes=[Route("/audit/{cluster}", audit, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"])
    arguments = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, http=arguments.http, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
