"""Drive a STOMP client and server over a plain socket pair.

The core never touches the socket: each side reads bytes, hands them to its
connection with ``receive_data``, pulls events with ``next_event`` and writes
whatever ``send`` returns. The server runs in a thread; the client runs in the
main thread. Run it with ``python docs/examples/socketpair_tutorial.py``.
"""

from __future__ import annotations

import socket
import threading
import time

import stomp_proto as stomp


def next_event(
    conn: stomp.ClientConnection | stomp.ServerConnection, sock: socket.socket
) -> stomp.Event:
    """Return the next event, reading from ``sock`` and running timers as needed."""
    while True:
        event = conn.next_event()
        if event is not stomp.NEED_DATA:
            # PAUSED only happens on a server that has not answered CONNECT,
            # and this program always answers at once.
            assert isinstance(event, stomp.Event)
            return event
        # Wait for data, but no longer than the connection's next deadline.
        deadline = conn.next_deadline()
        sock.settimeout(None if deadline is None else max(deadline - time.monotonic(), 0))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            # Time is an input: the connection says whether to send a
            # heart-beat, or raises RemoteProtocolError if the peer went silent.
            sock.sendall(conn.handle_timer(time.monotonic()))
            continue
        conn.receive_data(data, now=time.monotonic())  # b"" means EOF


def server(sock: socket.socket) -> None:
    """A one-client, one-topic broker: echo every SEND to every subscriber."""
    conn = stomp.ServerConnection(heart_beat=(5000, 5000))
    subscriptions: dict[str, str] = {}  # subscription id -> destination
    serial = 0
    try:
        while True:
            event = next_event(conn, sock)
            print(f"server got {type(event).__name__}")
            out = b""
            if isinstance(event, stomp.Connect):
                out += conn.send(conn.accept(server="tutorial/1.0"), now=time.monotonic())
            elif isinstance(event, stomp.Subscribe):
                assert event.id is not None  # required in STOMP 1.1 and 1.2
                subscriptions[event.id] = event.destination
            elif isinstance(event, stomp.Send):
                for sub_id, destination in subscriptions.items():
                    if destination == event.destination:
                        serial += 1
                        message = stomp.Message(
                            destination=destination,
                            message_id=f"m-{serial}",
                            subscription=sub_id,
                            ack=f"ack-{serial}",
                            content_type=event.content_type,
                            body=event.body,
                        )
                        out += conn.send(message)
            elif isinstance(event, stomp.ConnectionClosed):
                return
            # Any client frame may ask for a receipt; the protocol says to answer it.
            if getattr(event, "receipt", None) is not None:
                out += conn.send(event.make_receipt())
            sock.sendall(out)
    except stomp.RemoteProtocolError as exc:
        # Tell the client why, then close: STOMP servers close after ERROR.
        sock.sendall(conn.send(conn.error_for(exc)))
    finally:
        sock.close()


def client(sock: socket.socket) -> None:
    """Connect, subscribe, publish to ourselves, ACK the message, disconnect."""
    conn = stomp.ClientConnection()
    now = time.monotonic()
    sock.sendall(conn.send(stomp.Connect(host="localhost", heart_beat=(5000, 5000)), now=now))
    connected = next_event(conn, sock)
    assert isinstance(connected, stomp.Connected), connected
    print(f"client: STOMP {conn.version}, heart-beats {conn.heartbeat_intervals} ms")

    sock.sendall(
        conn.send(
            stomp.Subscribe(destination="/topic/greetings", id="0", ack="client", receipt="sub")
        )
    )
    sock.sendall(
        conn.send(
            stomp.Send(
                destination="/topic/greetings", content_type="text/plain", body=b"hello, STOMP"
            )
        )
    )
    while True:
        event = next_event(conn, sock)
        if isinstance(event, stomp.Receipt):
            # The connection knows which of our frames each RECEIPT confirms.
            print(f"client: receipt {event.receipt_id} confirms {type(event.confirms).__name__}")
        elif isinstance(event, stomp.Message):
            print(f"client: message on {event.destination}: {event.text()!r}")
            sock.sendall(conn.send(event.make_ack()))
            break

    sock.sendall(conn.send(stomp.Disconnect(receipt="bye")))
    while conn.state is not stomp.State.CLOSED:  # the RECEIPT for "bye" closes the session
        next_event(conn, sock)
    print(f"client: {conn.state.name}")
    sock.close()


def main() -> None:
    client_sock, server_sock = socket.socketpair()
    thread = threading.Thread(target=server, args=(server_sock,))
    thread.start()
    client(client_sock)
    thread.join()


if __name__ == "__main__":
    main()
