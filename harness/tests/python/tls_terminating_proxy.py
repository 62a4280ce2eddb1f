"""A TLS-terminating reverse proxy, standing for a user's own, for `gauntlet gate`'s wss check
of a command: plain TCP on --listen and TLS on --tls-listen (--cert, --key), each connection
relayed byte for byte to --upstream, or, with --upstream-tls, encrypted again to the server's
TLS port, its certificate checked against --ca for the name `server`. Standard library only;
stops on SIGTERM."""

import argparse
import asyncio
import signal
import ssl


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def relay(source, sink):
    """Copies until the source ends, then ends the sink: a half-close where the transport has
    one (plain TCP), a close where it has not (TLS)."""
    try:
        while True:
            data = await source.read(65536)
            if not data:
                break
            sink.write(data)
            await sink.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        try:
            if sink.can_write_eof():
                sink.write_eof()
            else:
                sink.close()
        except (ConnectionError, ssl.SSLError, OSError, RuntimeError):
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--tls-listen", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--upstream")
    parser.add_argument("--upstream-tls")
    parser.add_argument("--ca")
    args = parser.parse_args()

    terminating = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    terminating.load_cert_chain(args.cert, args.key)
    if args.upstream_tls:
        upstream = address(args.upstream_tls)
        again = ssl.create_default_context(cafile=args.ca)
        name = "server"
    else:
        upstream = address(args.upstream)
        again, name = None, None

    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *upstream, ssl=again, server_hostname=name
            )
        except (OSError, ssl.SSLError):
            writer.close()
            return
        await asyncio.gather(relay(reader, up_writer), relay(up_reader, writer))
        up_writer.close()
        writer.close()

    plain = await asyncio.start_server(handle, *address(args.listen))
    tls = await asyncio.start_server(handle, *address(args.tls_listen), ssl=terminating)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with plain, tls:
        await stop.wait()


asyncio.run(main())
