"""An Engine.IO client from another stack: echoes messages through a server and checks them.

Usage: engineio_client.py --mode client|by-hand [--transports polling,websocket] [--count N] URL

URL is the server's root (http://127.0.0.1:PORT). Prints one line per step on stdout.

--mode client: python-engineio's own client. It connects with the transports given (default
both: a polling handshake, then its upgrade to WebSocket), says which transport it ended on,
sends N text and N binary messages one at a time, each checked to come back unchanged and of
the same kind, waits a second (long enough for several heartbeats when the server pings often:
the client answers them), echoes as many again, and disconnects.

--mode by-hand: the protocol step by step with requests and websocket-client (python-engineio's
own HTTP and WebSocket libraries), each packet written and read with python-engineio's codec:
a polling handshake; a POST of a text and a binary message and the GET that echoes them; a GET
held while a WebSocket with the session's id probes (`2probe`, `3probe`), which the server must
answer with a noop; the upgrade (`5`) and an echo of each kind over the WebSocket; a poll after
the upgrade (400, code 3), an unknown session id (400, code 1); the close packet, after which
the server closes the WebSocket. Written for a server with engine.io's default 25 s ping
interval, so that no ping comes in the middle.

Exit codes: 0 every check passed; 1 anything else.
"""

import argparse
import faulthandler
import queue
import sys
import threading
import time

TIMEOUT = 10.0


def messages(count, tag):
    """N text and N binary messages, alternating; the text is no JSON (python-engineio reads
    a text message that is JSON as the value it encodes)."""
    for i in range(count):
        yield f"text message {i} {tag} from python"
        yield bytes([0xFF, 0xFE, i % 256]) + tag.encode()


def version(library):
    from importlib.metadata import version as installed

    return installed(library)


def with_client(url, transports, count):
    import engineio

    received = queue.Queue()
    eio = engineio.Client(request_timeout=TIMEOUT, handle_sigint=False)
    eio.on("message", received.put)
    eio.connect(url, transports=transports)
    print(f"connected over {eio.transport()} as {eio.sid}", flush=True)

    def echo(tag):
        echoed = 0
        for sent in messages(count, tag):
            eio.send(sent)
            got = received.get(timeout=TIMEOUT)
            kind = "binary" if isinstance(sent, bytes) else "text"
            if got == sent and type(got) is type(sent):
                echoed += 1
            else:
                print(f"wrong echo of a {kind} message: sent {sent!r}, got {got!r}")
        return echoed

    echoed = echo("before")
    time.sleep(1.0)
    echoed += echo("after")
    transport = eio.transport()
    eio.disconnect()
    print(f"echoed {echoed} of {4 * count} messages ({2 * count} text, {2 * count} binary) "
          f"over {transport}")
    print("disconnected")
    return echoed == 4 * count


class Failed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failed(what)
    print(f"ok: {what}", flush=True)


def by_hand(url, count):
    import requests
    import websocket
    from engineio import packet, payload

    base = f"{url}/engine.io/?EIO=4&transport=polling"
    http = requests.Session()
    http.trust_env = False
    reply = http.get(base, timeout=TIMEOUT)
    opened = payload.Payload(encoded_payload=reply.text).packets
    check(reply.status_code == 200 and opened[0].packet_type == packet.OPEN,
          "a polling handshake answers an open packet")
    sid = opened[0].data["sid"]
    check(opened[0].data["upgrades"] == ["websocket"], "it offers the websocket upgrade")
    session = f"{base}&sid={sid}"

    def post(*packets):
        body = payload.Payload(packets=list(packets)).encode()
        return http.post(session, data=body.encode(), timeout=TIMEOUT,
                         headers={"Content-Type": "text/plain;charset=UTF-8"})

    def poll():
        got = http.get(session, timeout=TIMEOUT)
        return got.status_code, payload.Payload(encoded_payload=got.text).packets

    for sent in messages(count, "polled"):
        check(post(packet.Packet(packet.MESSAGE, sent)).text == "ok", "a POST is answered ok")
        status, got = poll()
        check(status == 200 and [p.data for p in got] == [sent],
              f"the GET echoes the {'binary' if isinstance(sent, bytes) else 'text'} message")

    held = {}

    def hold():
        held["reply"] = requests.get(session, timeout=TIMEOUT)

    poller = threading.Thread(target=hold)
    poller.start()
    time.sleep(0.2)  # not needed for correctness: a GET after the probe gets the noop too
    ws_url = url.replace("http", "ws", 1) + f"/engine.io/?EIO=4&transport=websocket&sid={sid}"
    ws = websocket.create_connection(ws_url, timeout=TIMEOUT,
                                     http_no_proxy=["127.0.0.1", "localhost"])
    ws.send(packet.Packet(packet.PING, "probe").encode())
    pong = packet.Packet(encoded_packet=ws.recv())
    check(pong.packet_type == packet.PONG and pong.data == "probe", "2probe is answered 3probe")
    poller.join(TIMEOUT)
    noop = payload.Payload(encoded_payload=held["reply"].text).packets
    check([p.packet_type for p in noop] == [packet.NOOP], "the held GET is answered with a noop")
    ws.send(packet.Packet(packet.UPGRADE).encode())
    for sent in messages(count, "upgraded"):
        encoded = packet.Packet(packet.MESSAGE, sent).encode()
        if isinstance(sent, bytes):
            ws.send_binary(encoded)
        else:
            ws.send(encoded)
        got = packet.Packet(encoded_packet=ws.recv())
        check(got.packet_type == packet.MESSAGE and got.data == sent,
              f"the websocket echoes the {'binary' if isinstance(sent, bytes) else 'text'} "
              "message")
    late = http.get(session, timeout=TIMEOUT)
    check(late.status_code == 400 and late.json() == {"code": 3, "message": "Bad request"},
          "a poll after the upgrade is a bad request")
    unknown = http.get(f"{base}&sid=nobody", timeout=TIMEOUT)
    check(unknown.status_code == 400
          and unknown.json() == {"code": 1, "message": "Session ID unknown"},
          "an unknown session id is refused")
    ws.send(packet.Packet(packet.CLOSE).encode())
    frame = ws.recv_frame()
    while frame.opcode != websocket.ABNF.OPCODE_CLOSE:
        frame = ws.recv_frame()
    check(True, "the close packet closes the websocket")
    ws.shutdown()
    return True


def main():
    # Every step has its own timeout; should the client still be running well after them
    # (the test kills it after 20 s), say where each thread is.
    faulthandler.dump_traceback_later(18, exit=False)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["client", "by-hand"], required=True)
    parser.add_argument("--transports", default="polling,websocket")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("url")
    args = parser.parse_args()
    print(f"python-engineio {version('python-engineio')}: {args.mode} {args.url}", flush=True)
    try:
        if args.mode == "client":
            passed = with_client(args.url, args.transports.split(","), args.count)
        else:
            passed = by_hand(args.url, args.count)
    except Exception as e:  # noqa: BLE001 -- any failure is reported, with its kind
        print(f"failed: {type(e).__name__}: {e}")
        return 1
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
