"""Broker benchmark (issue 6): our reference broker against RabbitMQ 3.10 (STOMP).

``python -m benchmarks.broker`` from the repository root; ``--quick`` for CI.
See README.md in this directory.
"""
