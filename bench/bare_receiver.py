"""The baseline `serve` is measured against: Starlette + uvicorn decoding each EventList with msgspec, and nothing
else (no store, no fsync, no detection). Prints `listening on http://HOST:PORT` once it serves.

The server stack is serve's: uvicorn with httptools (`auto` picks it when installed, as here), asyncio's default
loop, no access log, no lifespan, and serve's garbage-collector tuning (so the baseline is not slowed by what
serve avoids). It differs from serve only where serve does more: serve adds connection hygiene
(`serve.connections`) and its own ASGI routing instead of Starlette's.

Run: `python -m bench.bare_receiver [--http h11|httptools]`.
"""

from __future__ import annotations

import argparse
import gc
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
    sock.listen(2048)  # before announcing the port, so that no client is refused while uvicorn starts
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    gc.collect()  # as serve does (`serve.server._tune_gc`)
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    config = uvicorn.Config(app, http=arguments.http, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
