"""Side effects of frames: subscriptions, ack ids, transactions and receipts.

Both roles keep the same books, from the frames they send and receive, so
that each side can refuse what the other side could not make sense of:

* subscriptions by id (1.0: by destination when there is no id), each with
  its ack mode; ids unique per connection (1.2 MUST; stomp-notes #64);
* messages delivered on ``client`` / ``client-individual`` subscriptions
  that still await an ACK or NACK, keyed the way the version identifies them
  (1.2 ``ack`` header, 1.1 ``message-id`` + ``subscription``, 1.0
  ``message-id``). ``client`` acks are cumulative per subscription (1.2
  "all messages sent to the subscription before the ACK'ed message");
* open transactions, whose ACK/NACK take effect only at COMMIT;
* receipts requested and not yet answered.

Every check raises the exception class it is given: LocalProtocolError when
our user sent the frame, RemoteProtocolError when the peer did.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from ._errors import ProtocolError
from ._events import Ack, Event, Message, Nack, Subscribe, Unsubscribe

__all__ = ["ACK_MODES", "Books"]

#: Ack modes per version (1.0 defines no client-individual; a server accepts it anyway).
ACK_MODES = {
    "1.0": frozenset({"auto", "client"}),
    "1.1": frozenset({"auto", "client", "client-individual"}),
    "1.2": frozenset({"auto", "client", "client-individual"}),
}

#: How a version identifies a message: ``ack`` / ``id`` (1.2), ``message-id`` (1.0),
#: or ``(message-id, subscription)`` (1.1).
AckKey = str | tuple[str, str]

# How many ids of ended subscriptions a client remembers, so that MESSAGE
# frames the server sent before it processed our UNSUBSCRIBE are still
# accepted. Bounded so that churning subscriptions cannot grow memory.
_RECENTLY_ENDED = 256


class Books:
    """The per-connection bookkeeping; see the module docstring."""

    def __init__(
        self,
        *,
        max_subscriptions: int,
        max_transactions: int,
        max_pending_receipts: int,
        max_unacknowledged: int,
    ) -> None:
        self.max_unacknowledged = max_unacknowledged
        self.max_subscriptions = max_subscriptions
        self.max_transactions = max_transactions
        self.max_pending_receipts = max_pending_receipts
        self.version = "1.2"
        #: subscription key -> ack mode
        self.subscriptions: dict[str, str] = {}
        #: Recently ended subscription keys (made at the first UNSUBSCRIBE:
        #: an empty deque costs 760 bytes a connection).
        self.ended: deque[str] | None = None
        #: subscription key -> {ack key: None}, in delivery order. An
        #: OrderedDict: a cumulative ACK pops from the front in O(1) per message
        #: it settles (a plain dict's front goes stale: each pop re-scans the
        #: deleted slots, and copying the keys is O(unacknowledged) per ACK).
        self.unacked: dict[str, OrderedDict[AckKey, None]] = {}
        #: ack key -> subscription key
        self.ack_owner: dict[AckKey, str] = {}
        #: transaction id -> (ack key, event) of the ACK/NACKs held until COMMIT
        self.transactions: dict[str, list[tuple[AckKey, Ack | Nack]]] = {}
        #: receipt id -> the event that asked for it
        self.receipts: dict[str, Event] = {}

    # -- receipts ------------------------------------------------------------

    def check_receipt(self, event: Event, receipt: str, err: type[ProtocolError]) -> None:
        if not receipt:
            raise err(f"{event.COMMAND} has an empty receipt header")
        if receipt in self.receipts:
            raise err(f"{event.COMMAND} reuses receipt id {receipt!r}, which is still pending")
        if len(self.receipts) >= self.max_pending_receipts:
            raise err(
                f"{event.COMMAND} would exceed the limit of {self.max_pending_receipts} "
                f"pending receipts"
            )

    def request_receipt(self, event: Event, receipt: str, err: type[ProtocolError]) -> None:
        self.check_receipt(event, receipt, err)
        self.receipts[receipt] = event

    def check_answer(self, receipt_id: str, err: type[ProtocolError]) -> None:
        if receipt_id not in self.receipts:
            raise err(f"RECEIPT for receipt-id {receipt_id[:80]!r}, which no frame asked for")

    def answer_receipt(self, receipt_id: str, err: type[ProtocolError]) -> Event:
        self.check_answer(receipt_id, err)
        return self.receipts.pop(receipt_id)

    # -- subscriptions -------------------------------------------------------

    def check_subscribe(
        self, event: Subscribe, err: type[ProtocolError], *, received: bool = False
    ) -> str:
        """Check a SUBSCRIBE; return the key it will be booked under.

        ``received``: a server got it from its client. POLICY: a server
        accepts ``ack:client-individual`` in STOMP 1.0 too, as RabbitMQ and
        ActiveMQ do (stomp.py sends it with 1.0); a client never sends it.
        """
        version = self.version
        if event.id is None and version != "1.0":
            raise err(
                f"SUBSCRIBE needs an id header in STOMP {version}", receipt_id=_receipt(event)
            )
        if event.ack not in ACK_MODES[version] and not (
            received and event.ack == "client-individual"
        ):
            raise err(
                f"SUBSCRIBE ack:{event.ack[:40]!r} is not an ack mode of STOMP {version}",
                receipt_id=_receipt(event),
            )
        key = event.subscription_key
        if key in self.subscriptions:
            raise err(f"SUBSCRIBE id {key[:80]!r} is already in use", receipt_id=_receipt(event))
        if len(self.subscriptions) >= self.max_subscriptions:
            raise err(
                f"SUBSCRIBE would exceed the limit of {self.max_subscriptions} subscriptions",
                receipt_id=_receipt(event),
            )
        return key

    def subscribe(self, event: Subscribe, err: type[ProtocolError], *, received: bool) -> None:
        self.subscriptions[self.check_subscribe(event, err, received=received)] = event.ack

    def check_unsubscribe(self, event: Unsubscribe, err: type[ProtocolError]) -> str:
        """Check an UNSUBSCRIBE; return the key of the subscription it ends."""
        key = event.id if self.version != "1.0" else event.subscription_key
        if key is None:
            need = "an id or destination" if self.version == "1.0" else "an id"
            raise err(f"UNSUBSCRIBE needs {need} header", receipt_id=_receipt(event))
        if key not in self.subscriptions:
            raise err(
                f"UNSUBSCRIBE names unknown subscription {key[:80]!r}", receipt_id=_receipt(event)
            )
        return key

    def unsubscribe(self, event: Unsubscribe, err: type[ProtocolError]) -> None:
        key = self.check_unsubscribe(event, err)
        del self.subscriptions[key]
        if self.ended is None:
            self.ended = deque(maxlen=_RECENTLY_ENDED)
        self.ended.append(key)
        for ack_key in self.unacked.pop(key, {}):
            del self.ack_owner[ack_key]

    # -- messages and acks ---------------------------------------------------

    def subscription_for(self, event: Message) -> str | None:
        """The key of the active subscription ``event`` belongs to, or None.

        By its ``subscription`` header; in 1.0, where a SUBSCRIBE without id
        gets MESSAGEs without one, by its destination, or else the only
        subscription when there is just one.
        """
        sub = event.subscription
        if sub is None:
            if self.version != "1.0":
                return None
            sub = event.destination
        if sub in self.subscriptions:
            return sub
        if event.subscription is None and len(self.subscriptions) == 1:
            return next(iter(self.subscriptions))
        return None

    def ack_key(self, event: Message | Ack | Nack) -> AckKey | None:
        """How the version identifies the message ``event`` delivers or settles, or None.

        1.2: the MESSAGE's ``ack`` header, which the ACK echoes as ``id``;
        1.1: ``(message-id, subscription)``; 1.0: ``message-id``. None when
        the headers the version needs are missing.
        """
        version = self.version
        if version == "1.2":
            return event.ack if isinstance(event, Message) else event.id
        if version == "1.1":
            if event.message_id is None or event.subscription is None:
                return None
            return (event.message_id, event.subscription)
        return event.message_id

    def check_deliver(
        self, event: Message, err: type[ProtocolError], *, received: bool
    ) -> tuple[str, AckKey] | None:
        """Check a MESSAGE against the subscriptions.

        Returns the subscription key and ack key to remember, or None when no
        ack is owed. ``received``: the MESSAGE came from the peer, so one for
        a subscription we just ended may legitimately still be in flight.
        """
        sub = self.subscription_for(event)
        if sub is None:
            if event.subscription is None and self.version != "1.0":
                raise err(f"MESSAGE {event.message_id[:80]!r} has no subscription header")
            ended = self.ended or ()
            if received and event.subscription is not None and event.subscription in ended:
                return None  # in flight when we unsubscribed; no ack is owed
            raise err(
                f"MESSAGE {event.message_id[:80]!r} is for subscription "
                f"{(event.subscription or event.destination)[:80]!r}, which is not active"
            )
        mode = self.subscriptions[sub]
        if mode == "auto":
            return None
        key = self.ack_key(event)
        if key is None:
            raise err(
                f"MESSAGE {event.message_id[:80]!r} on {mode} subscription {sub[:80]!r} "
                f"has no ack header"
            )
        if key in self.ack_owner:
            raise err(f"MESSAGE reuses ack id {str(key)[:80]!r}, which is still unacknowledged")
        if len(self.ack_owner) >= self.max_unacknowledged:
            raise err(
                f"MESSAGE would exceed the limit of {self.max_unacknowledged} "
                f"unacknowledged messages"
            )
        return sub, key

    def deliver(self, event: Message, err: type[ProtocolError], *, received: bool) -> None:
        """Check a MESSAGE and remember its ack key, if an ack is owed."""
        sub = event.subscription
        if sub is not None and self.subscriptions.get(sub) == "auto":
            return  # the hot path: what check_deliver() says of an active auto subscription
        owed = self.check_deliver(event, err, received=received)
        if owed is not None:
            sub, key = owed
            pending = self.unacked.get(sub)
            if pending is None:
                pending = self.unacked[sub] = OrderedDict()
            pending[key] = None
            self.ack_owner[key] = sub

    def forget(self, keys: list[AckKey]) -> None:
        """Settle ``keys`` acknowledged by a frame the books did not see (the
        broker relay's cumulative ACK on RabbitMQ, which settles messages of
        several subscriptions)."""
        for key in keys:
            self._settle(key, [])

    def check_acknowledge(self, event: Ack | Nack, err: type[ProtocolError]) -> AckKey:
        """Check an ACK/NACK; return the ack key it settles."""
        version = self.version
        command = event.COMMAND
        if isinstance(event, Nack) and version == "1.0":
            raise err("NACK does not exist in STOMP 1.0", receipt_id=_receipt(event))
        key = self.ack_key(event)
        if key is None:
            if version == "1.2":
                need = "an id header"
            elif version == "1.1":
                need = "message-id and subscription headers"
            else:
                need = "message-id headers"
            raise err(f"{command} needs {need} in STOMP {version}", receipt_id=_receipt(event))
        if key not in self.ack_owner:
            raise err(
                f"{command} for {str(key)[:80]!r}, which is not an unacknowledged message",
                receipt_id=_receipt(event),
            )
        return key

    def acknowledge(self, event: Ack | Nack, err: type[ProtocolError]) -> list[AckKey]:
        """Check an ACK/NACK; settle it now or, in a transaction, at COMMIT.

        Returns the ack keys it settled now, in delivery order (none in a
        transaction). Its transaction, if any, must have been checked
        (:meth:`check_transaction`).
        """
        key = self.check_acknowledge(event, err)
        if event.transaction is not None:
            self.transactions[event.transaction].append((key, event))
            return []
        return self._settle(key, [])

    def _settle(self, key: AckKey, settled: list[AckKey]) -> list[AckKey]:
        """Settle ``key`` (and, ``client`` mode, every earlier message); append to ``settled``."""
        sub = self.ack_owner.get(key)
        if sub is None:
            return settled  # settled meanwhile (a cumulative ACK, or twice in one transaction)
        pending = self.unacked[sub]
        owner = self.ack_owner
        if self.subscriptions.get(sub) == "client":
            # Cumulative: this message and every earlier one of the subscription,
            # in O(messages settled), whatever is still unacknowledged after it.
            while True:
                earlier = pending.popitem(last=False)[0]
                del owner[earlier]
                settled.append(earlier)
                if earlier == key:
                    break
        else:
            del pending[key]
            del owner[key]
            settled.append(key)
        return settled

    # -- transactions --------------------------------------------------------

    def _transaction(
        self, event: Event, tx: str, err: type[ProtocolError]
    ) -> list[tuple[AckKey, Ack | Nack]]:
        held = self.transactions.get(tx)
        if held is None:
            raise err(
                f"{event.COMMAND} names unknown transaction {tx[:80]!r}", receipt_id=_receipt(event)
            )
        return held

    def check_transaction(self, event: Event, tx: str | None, err: type[ProtocolError]) -> None:
        if tx is not None:
            self._transaction(event, tx, err)

    def check_begin(self, event: Event, tx: str, err: type[ProtocolError]) -> None:
        if tx in self.transactions:
            raise err(
                f"BEGIN of transaction {tx[:80]!r}, which is already open",
                receipt_id=_receipt(event),
            )
        if len(self.transactions) >= self.max_transactions:
            raise err(
                f"BEGIN would exceed the limit of {self.max_transactions} open transactions",
                receipt_id=_receipt(event),
            )

    def begin(self, event: Event, tx: str, err: type[ProtocolError]) -> None:
        self.check_begin(event, tx, err)
        self.transactions[tx] = []

    def end(
        self, event: Event, tx: str, err: type[ProtocolError], *, commit: bool
    ) -> list[tuple[Ack | Nack, list[AckKey]]]:
        """COMMIT or ABORT ``tx``; return each held ACK/NACK with the ack keys it settled."""
        held = self._transaction(event, tx, err)
        del self.transactions[tx]
        if not commit:
            return []
        return [(ack, self._settle(key, [])) for key, ack in held]


def _receipt(event: Event) -> str | None:
    return getattr(event, "receipt", None)
