"""A WebSocket client from another stack: echoes messages and checks what comes back.

Usage: echo_client.py --library websockets|websocket-client URL [--count N] [--ca FILE]

Sends N text and N binary messages (binary ones are not UTF-8), one at a time, checks that
each comes back unchanged and as the same kind, then closes with 1000 and checks the
server's Close carries 1000. Prints one line per step on stdout.

Exit codes: 0 every echo matched and the close was clean; 1 anything else went wrong;
3 the server (or something in between) answered the handshake with a status other than 101:
the line `handshake rejected: HTTP <status>` says which.
"""

import argparse
import faulthandler
import ssl
import struct
import sys

TIMEOUT = 10.0
NORMAL_CLOSE = 1000


def messages(count):
    """N text and N binary messages, alternating."""
    for i in range(count):
        yield f"text message {i} from python"
        yield bytes([0xFF, 0xFE, i % 256]) + bytes(range(64))


def tls_context(ca):
    return ssl.create_default_context(cafile=ca) if ca else None


class Rejected(Exception):
    """The handshake got this status instead of 101."""

    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status = status


def with_websockets(url, count, ca):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    try:
        ws = connect(url, ssl=tls_context(ca), proxy=None, open_timeout=TIMEOUT,
                     close_timeout=TIMEOUT, compression=None)
    except InvalidStatus as e:
        raise Rejected(e.response.status_code) from e
    with ws:
        for message in messages(count):
            ws.send(message)
            yield message, ws.recv(timeout=TIMEOUT)
        ws.close(NORMAL_CLOSE)
    yield None, ws.close_code


def with_websocket_client(url, count, ca):
    import websocket

    sslopt = {"ca_certs": ca} if ca else None
    try:
        ws = websocket.create_connection(url, timeout=TIMEOUT, sslopt=sslopt,
                                         http_no_proxy=["127.0.0.1", "localhost"])
    except websocket.WebSocketBadStatusException as e:
        raise Rejected(e.status_code) from e
    try:
        for message in messages(count):
            if isinstance(message, bytes):
                ws.send_binary(message)
            else:
                ws.send(message)
            yield message, ws.recv()
        # Close by hand: websocket-client's close() does not say what code came back.
        ws.send_close(NORMAL_CLOSE)
        frame = ws.recv_frame()
        while frame.opcode != websocket.ABNF.OPCODE_CLOSE:
            frame = ws.recv_frame()
        yield None, struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else None
    finally:
        ws.shutdown()


LIBRARIES = {"websockets": with_websockets, "websocket-client": with_websocket_client}


def version(library):
    from importlib.metadata import version as installed

    return installed(library)


def main():
    # Every step has its own timeout; should the client still be running well after them
    # (the test kills it after 20 s), say where each thread is.
    faulthandler.dump_traceback_later(15, exit=False)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=sorted(LIBRARIES), required=True)
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--ca", help="a CA certificate (PEM) to trust for wss")
    parser.add_argument("url")
    args = parser.parse_args()
    print(f"{args.library} {version(args.library)}: {args.url}", flush=True)
    echoed, wrong = 0, 0
    try:
        for sent, got in LIBRARIES[args.library](args.url, args.count, args.ca):
            if sent is None:
                clean = got == NORMAL_CLOSE
                print(f"close {got}: {'clean' if clean else 'not clean'}")
                break
            kind = "binary" if isinstance(sent, bytes) else "text"
            if got == sent:
                echoed += 1
            else:
                wrong += 1
                print(f"wrong echo of a {kind} message: sent {sent!r}, got {got!r}")
        else:
            clean = False
            print("no close")
    except Rejected as e:
        print(f"handshake rejected: {e}")
        return 3
    except Exception as e:  # noqa: BLE001 -- any failure is reported, with its kind
        print(f"failed: {type(e).__name__}: {e}")
        return 1
    print(f"echoed {echoed} of {2 * args.count} messages ({args.count} text, {args.count} binary)")
    return 0 if clean and wrong == 0 and echoed == 2 * args.count else 1


if __name__ == "__main__":
    sys.exit(main())
