"""Faithful local stand-ins for the five vendors' HTTP APIs.

Each simulator speaks its vendor's documented API (auth, request shape, codes,
bulk endpoint), enforces the documented limits, can inject latency and errors,
and records every message it accepted so tests and benchmarks count, at the
vendor side, what was received: duplicates, rate violations, missing messages.
"""
