"""``python -m benchmarks.broker.wslayer``: the server's WebSocket layer, wsproto or websockets.

Issue 14: which sans-IO WebSocket library should frame the broker's WebSocket
connections? Both are timed here, in-process, in one run, on the same bytes:

* **receive**: 20,000 client messages (one STOMP SEND of 100-byte body each,
  masked text, as stompjs sends them) fed in 64 KiB reads to a server
  connection; the STOMP bytes of each message taken out (what the broker's
  parser is fed), with the UTF-8 check a text message needs (wsproto decodes
  text itself; websockets' sans-IO layer leaves it to the caller, so the
  timing includes ``isascii()`` or a decode);
* **send**: 20,000 STOMP MESSAGE frames framed as server messages (text),
  joined for one write;
* **memory**: what one open server connection holds (tracemalloc), the
  per-idle-connection cost of the layer.

``header`` is the outbound framing the broker uses (a 2- or 4-byte header
per message, built directly: server frames are unmasked and no extension is
negotiated), for comparison with the libraries' own framing. Each figure is
the median of ``--rounds`` rounds (7).

``--end-to-end`` runs the suite's WebSocket scenarios (point to point,
fan-out, latency) against two of our brokers side by side, in interleaved
rounds (``--rounds``, here 3): the broker as it is (websockets) and the same
broker with wsproto framing the open connections
(``benchmarks/broker/wsproto_broker.py``), so the whole path is measured
with only the library changed.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import struct
import sys
import time
import tracemalloc
from collections.abc import Callable

N = 20_000
SEND = (
    b"SEND\ndestination:/queue/bench\ncontent-length:100\n\n" + b"0000012345 " + b"x" * 89 + b"\x00"
)
MESSAGE = (
    b"MESSAGE\ndestination:/queue/bench\nmessage-id:m-12345\nsubscription:0\n"
    b"content-length:100\n\n" + b"0000012345 " + b"x" * 89 + b"\x00"
)


def client_message(payload: bytes) -> bytes:
    n = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    key = os.urandom(4)
    stream = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + (int.from_bytes(payload, "big") ^ stream).to_bytes(n, "big")


def chunks() -> list[bytes]:
    wire = b"".join(client_message(SEND) for _ in range(N))
    return [wire[i : i + 65536] for i in range(0, len(wire), 65536)]


# -- wsproto -----------------------------------------------------------------------


def wsproto_server():
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/ws")))
    for event in server.events():
        assert isinstance(event, Request)
    client.receive_data(server.send(AcceptConnection()))
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    return server


def wsproto_receive(data: list[bytes]) -> int:
    from wsproto.events import BytesMessage, Message

    server = wsproto_server()
    got = 0
    for chunk in data:
        server.receive_data(chunk)
        out = []
        for event in server.events():
            if isinstance(event, Message):
                out.append(
                    bytes(event.data) if isinstance(event, BytesMessage) else event.data.encode()
                )
        got += len(b"".join(out))
    return got


def wsproto_send(frames: list[bytes]) -> int:
    from wsproto.events import TextMessage

    server = wsproto_server()
    send = server.send
    return len(b"".join([send(TextMessage(data=f.decode())) for f in frames]))


# -- websockets (sans-IO) ----------------------------------------------------------


def websockets_receive(data: list[bytes]) -> int:
    from websockets.frames import Opcode
    from websockets.protocol import OPEN, SERVER, Protocol

    server = Protocol(SERVER, state=OPEN, max_size=1 << 20)
    text = Opcode.TEXT
    got = 0
    for chunk in data:
        server.receive_data(chunk)
        out = []
        for frame in server.events_received():
            payload = frame.data
            if frame.opcode is text and not payload.isascii():
                payload.decode()
            out.append(payload)
        got += len(b"".join(out))
    return got


def websockets_send(frames: list[bytes]) -> int:
    from websockets.protocol import OPEN, SERVER, Protocol

    server = Protocol(SERVER, state=OPEN)
    for f in frames:
        server.send_text(f)
    return len(b"".join(server.data_to_send()))


# -- the broker's outbound framing -------------------------------------------------

_HEADS = [bytes((0x81, n)) for n in range(126)]


def header_send(frames: list[bytes]) -> int:
    out = []
    append = out.append
    heads = _HEADS
    for f in frames:
        n = len(f)
        append(heads[n] if n < 126 else struct.pack("!BBH", 0x81, 126, n))
        append(f)
    return len(b"".join(out))


def memory(make: Callable[[], object]) -> float:
    """Bytes one open server connection of the layer holds (tracemalloc)."""
    make()  # imports and caches first
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make() for _ in range(200)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / 200


def websockets_conn():
    from websockets.protocol import OPEN, SERVER, Protocol

    return Protocol(SERVER, state=OPEN, max_size=1 << 20)


def median_ms(call: Callable[[], object], rounds: int) -> float:
    call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def end_to_end(rounds: int) -> None:
    import asyncio

    from . import procs
    from .__main__ import _fmt, _settle
    from .scenarios import SCENARIOS, Counts, raise_fd_limit

    raise_fd_limit(2000)
    names = ["ws-point-to-point", "ws-fan-out", "ws-latency"]
    targets = [
        procs.start_ours(name="websockets"),
        procs.start_ours(module="benchmarks.broker.wsproto_broker", name="wsproto"),
    ]
    results: dict[str, dict[str, list[float]]] = {t.name: {n: [] for n in names} for t in targets}
    cpu: dict[str, dict[str, list[float]]] = {t.name: {n: [] for n in names} for t in targets}

    async def one_round(order: list[procs.Target]) -> None:
        for name in names:
            for target in order:
                r = await SCENARIOS[name](target, Counts())
                if r.error is not None or r.value is None:
                    raise SystemExit(f"{target.name} {name}: {r.error}")
                results[target.name][name].append(r.value)
                cpu[target.name][name].append(r.cpu)
                print(f"  {target.name:10} {name:17} {_fmt(r.value)} {r.unit}", file=sys.stderr)
                for each in targets:
                    await _settle(each)

    try:
        for k in range(rounds):
            asyncio.run(one_round(targets if k % 2 == 0 else targets[::-1]))
    finally:
        for target in targets:
            target.broker.close()
    med = statistics.median
    print(f"our broker over WebSocket, framing by each library, median of {rounds} rounds")
    print("(ratio: websockets / wsproto; for latency, lower is better)")
    print(f"{'scenario':<18} {'websockets':>12} {'wsproto':>12} {'ratio':>7} {'CPU s':>13}")
    for name in names:
        a, b = med(results["websockets"][name]), med(results["wsproto"][name])
        ca, cb = med(cpu["websockets"][name]), med(cpu["wsproto"][name])
        print(f"{name:<18} {_fmt(a):>12} {_fmt(b):>12} {a / b:6.2f}x {ca:5.1f} / {cb:5.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--end-to-end", action="store_true", help="both as the broker's layer")
    args = parser.parse_args(argv)
    if args.end_to_end:
        end_to_end(args.rounds if args.rounds != 7 else 3)
        return
    data = chunks()
    frames = [MESSAGE] * N
    expected = len(SEND) * N
    assert wsproto_receive(data) == expected == websockets_receive(data)
    assert wsproto_send(frames) == websockets_send(frames) == header_send(frames)

    rows = [
        ("receive", "wsproto", median_ms(lambda: wsproto_receive(data), args.rounds)),
        ("receive", "websockets", median_ms(lambda: websockets_receive(data), args.rounds)),
        ("send", "wsproto", median_ms(lambda: wsproto_send(frames), args.rounds)),
        ("send", "websockets", median_ms(lambda: websockets_send(frames), args.rounds)),
        ("send", "header", median_ms(lambda: header_send(frames), args.rounds)),
    ]
    print(f"{N:,} messages of {len(SEND)}/{len(MESSAGE)} bytes, median of {args.rounds} rounds")
    print(f"{'direction':<10} {'layer':<11} {'ms':>8} {'us/message':>11}")
    for direction, layer, ms in rows:
        print(f"{direction:<10} {layer:<11} {ms:8.1f} {ms * 1000 / N:11.2f}")
    print(f"memory per open server connection: wsproto {memory(wsproto_server):,.0f} B,", end="")
    print(f" websockets {memory(websockets_conn):,.0f} B")


if __name__ == "__main__":
    main()
