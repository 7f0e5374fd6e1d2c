"""Our broker for the checker's tests: the interop tests' subprocess broker
(tests/interop/ourbroker.py), started once per session."""

from ..interop.ourbroker import _ourbroker_session, ourbroker  # noqa: F401
