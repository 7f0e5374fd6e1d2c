"""MessageTemplate: one message encoded once for many deliveries, byte for byte
what the general serializer writes (or refuses)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stomp_proto import (
    ClientConnection,
    Connect,
    Event,
    Frame,
    FrameParser,
    LocalProtocolError,
    Message,
    MessageTemplate,
    ServerConnection,
    Subscribe,
)

VERSIONS = ("1.0", "1.1", "1.2")
TEXT = st.text(st.sampled_from(list("ab:\\\n\r é-")), max_size=6)


def _serialized(message: Message, version: str) -> bytes | str:
    try:
        return message.to_frame(version).serialize(version)
    except LocalProtocolError as exc:
        return f"refused: {exc}"


def _encoded(template: MessageTemplate, message: Message, version: str) -> bytes | str | None:
    try:
        return template._encode(message, version)
    except LocalProtocolError as exc:
        return f"refused: {exc}"


@given(
    destination=TEXT.filter(bool),
    message_id=TEXT.filter(bool),
    content_type=st.none() | TEXT,
    headers=st.lists(st.tuples(TEXT, TEXT), max_size=4).map(tuple),
    body=st.binary(max_size=8),
    deliveries=st.lists(
        st.tuples(st.none() | TEXT, st.none() | TEXT, st.sampled_from(VERSIONS)),
        min_size=1,
        max_size=6,
    ),
)
def test_every_delivery_is_what_the_serializer_writes(
    destination: str,
    message_id: str,
    content_type: str | None,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
    deliveries: list[tuple[str | None, str | None, str]],
) -> None:
    template = MessageTemplate(
        destination=destination,
        message_id=message_id,
        content_type=content_type,
        body=body,
        headers=headers,
    )
    for subscription, ack, version in deliveries:
        message = template.message(subscription=subscription, ack=ack)
        assert message == Message(
            destination=destination,
            message_id=message_id,
            subscription=subscription,
            ack=ack,
            content_type=content_type,
            body=body,
            headers=headers,
        )
        got = _encoded(template, message, version)
        # None: left to the general serializer (a value to escape or refuse).
        assert got is None or got == _serialized(message, version)


def test_plain_messages_are_encoded_once_for_every_version() -> None:
    template = MessageTemplate(
        destination="/topic/a", message_id="m-1", content_type="text/plain", body=b"hi"
    )
    first = template.message(subscription="0")
    assert template._encode(first, "1.2") == _serialized(first, "1.2")
    assert set(template._encoded) == set(VERSIONS)
    for version in VERSIONS:
        other = template.message(subscription="7", ack="42")
        assert template._encode(other, version) == (
            b"MESSAGE\ndestination:/topic/a\nmessage-id:m-1\nsubscription:7\nack:42\n"
            b"content-type:text/plain\ncontent-length:2\n\nhi\0"
        )


def test_a_message_without_body_or_headers_has_no_content_length() -> None:
    template = MessageTemplate(destination="/a", message_id="m-1")
    for subscription in ("0", "1"):
        message = template.message(subscription=subscription)
        assert template._encode(message, "1.1") == (
            f"MESSAGE\ndestination:/a\nmessage-id:m-1\nsubscription:{subscription}\n\n\0".encode()
        )


def test_a_value_to_escape_is_cut_from_the_first_serialization_per_version() -> None:
    template = MessageTemplate(
        destination="/topic/a", message_id="m-1", headers=(("url", "http://x"),)
    )
    for version in ("1.1", "1.2", "1.0"):
        first = template.message(subscription="0")
        assert template._encode(first, version) == _serialized(first, version)
        second = template.message(subscription="1", ack="9")
        assert template._encode(second, version) == _serialized(second, version)
    assert set(template._encoded) == set(VERSIONS)
    empty = MessageTemplate(destination="/a", message_id="m:2")
    message = empty.message()
    assert empty._encode(message, "1.2") == b"MESSAGE\ndestination:/a\nmessage-id:m\\c2\n\n\0"
    assert empty._encode(empty.message(), "1.2") == _serialized(message, "1.2")


def test_what_the_version_cannot_write_is_refused_as_the_serializer_refuses() -> None:
    template = MessageTemplate(destination="/a", message_id="m-1", headers=(("k", "a\nb"),))
    message = template.message(subscription="0")
    with pytest.raises(LocalProtocolError) as caught:
        template._encode(message, "1.0")
    assert f"refused: {caught.value}" == _serialized(message, "1.0")
    assert "1.0" not in template._encoded
    assert template._encode(message, "1.2") == _serialized(message, "1.2")


def test_a_content_length_header_is_checked_by_the_serializer() -> None:
    right = MessageTemplate(
        destination="/a", message_id="m-1", body=b"abc", headers=(("content-length", "3"),)
    )
    message = right.message(subscription="0")
    assert right._encode(message, "1.2") == _serialized(message, "1.2")
    wrong = MessageTemplate(
        destination="/a", message_id="m-1", body=b"abc", headers=(("content-length", "4"),)
    )
    with pytest.raises(LocalProtocolError, match="content-length"):
        wrong._encode(wrong.message(subscription="0"), "1.2")


def test_a_subscription_or_ack_to_escape_goes_to_the_serializer() -> None:
    template = MessageTemplate(destination="/a", message_id="m-1")
    for subscription, ack in (
        ("a:b", None),
        ("0", "x\\y"),
        ("a\nb", None),
        ("a\rb", None),
        (None, ":\n"),
        ("x", ":\n"),
    ):
        assert template._encode(template.message(subscription=subscription, ack=ack), "1.2") is None
    assert template._encoded == {}


def test_a_message_changed_since_is_serialized_in_full() -> None:
    template = MessageTemplate(destination="/a", message_id="m-1", body=b"x")
    message = template.message(subscription="0")
    for change in (
        {"destination": "/b"},
        {"message_id": "m-2"},
        {"content_type": "text/plain"},
        {"body": b"y"},
        {"headers": (("k", "v"),)},
    ):
        changed = dataclasses.replace(message, **change)
        assert changed._template is None
        sneaky = template.message(subscription="0")
        [(attr, value)] = change.items()
        object.__setattr__(sneaky, attr, value)
        assert template._encode(sneaky, "1.2") is None


def test_arguments_are_validated_as_message_validates_them() -> None:
    with pytest.raises(TypeError, match="body must be bytes"):
        MessageTemplate(destination="/a", message_id="m", body="text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="headers must be a tuple"):
        MessageTemplate(destination="/a", message_id="m", headers=[("k", "v")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="headers must be a tuple"):
        MessageTemplate(destination="/a", message_id="m", headers=(("k", 1),))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="non-empty destination"):
        MessageTemplate(destination="", message_id="m")
    with pytest.raises(TypeError, match="content-type must be a str"):
        MessageTemplate(destination="/a", message_id="m", content_type=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="subscription and ack"):
        MessageTemplate(destination="/a", message_id="m").message(subscription=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="subscription and ack"):
        MessageTemplate(destination="/a", message_id="m").message(ack=1)  # type: ignore[arg-type]

    class Name(str):
        pass

    accepted = MessageTemplate(destination=Name("/a"), message_id="m")  # as Message accepts it
    assert accepted.message().destination == "/a"


def test_a_parsed_message_has_no_template() -> None:
    parser = FrameParser()
    parser.receive_data(b"MESSAGE\ndestination:/a\nmessage-id:1\nsubscription:0\n\n\0")
    frame = parser.next_frame()
    assert isinstance(frame, Frame)
    assert Message._from_frame(frame)._template is None  # the compiled builder
    generic = Event._from_frame.__func__(Message, frame)  # type: ignore[attr-defined]
    assert generic == Message._from_frame(frame)
    assert generic._template is None


def test_a_server_connection_writes_templated_deliveries() -> None:
    client, server = ClientConnection(), ServerConnection()
    server.receive_data(client.send(Connect(host="h", accept_version=("1.2",))))
    server.next_event()
    client.receive_data(server.send(server.accept()))
    client.next_event()
    for sub_id, ack in (("a", "auto"), ("b", "client"), ("c:d", "auto")):
        server.receive_data(client.send(Subscribe(destination="/topic/t", id=sub_id, ack=ack)))
        server.next_event()
    template = MessageTemplate(destination="/topic/t", message_id="m-1", body=b"hello")
    first = template.message(subscription="a")
    second = template.message(subscription="b", ack="1")
    assert server.check(second) is None
    data = server.send(first) + server.send(second)
    assert data == _serialized(first, "1.2") + _serialized(second, "1.2")  # type: ignore[operator]
    client.receive_data(data)
    got = [client.next_event(), client.next_event()]
    assert got == [first, second]
    assert [m.subscription for m in got] == ["a", "b"]  # type: ignore[union-attr]
    assert server.unacknowledged == {"b": ["1"]}
    escaped = template.message(subscription="c:d")  # the general serializer's
    assert server.send(escaped) == _serialized(escaped, "1.2")
    assert b"subscription:c\\cd\n" in server.send(escaped)
    stray = template.message(subscription="nobody")
    with pytest.raises(LocalProtocolError, match="subscription"):
        server.send(stray)
