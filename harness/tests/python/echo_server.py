"""A WebSocket echo server from another stack (websockets, asyncio) on 127.0.0.1.

Usage: echo_server.py [--port PORT]

Echoes every text and binary message unchanged, as the same kind, on any path, and answers
a Close with the same code. Everything else is websockets' default, its 1 MiB message limit
included: harness/tests/it/conformance.rs holds it to the same RFC 6455 cases as the
reference server. Prints `listening on 127.0.0.1:PORT` on stdout once it listens,
then runs until killed.
"""

import argparse
import asyncio

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main(port):
    async with serve(echo, "127.0.0.1", port, compression=None) as server:
        host, bound = next(iter(server.sockets)).getsockname()[:2]
        print(f"listening on {host}:{bound}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
