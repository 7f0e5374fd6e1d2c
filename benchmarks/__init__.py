"""Benchmarks: stomp_proto against the other Python STOMP parsers and a pure-Python floor.

Run ``python -m benchmarks`` from the repository root (``--quick`` for CI); see README.md.
"""
