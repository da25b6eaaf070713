"""CPython's cyclic garbage collector, tuned for our long-lived servers.

Both tunings start by freezing what start-up built (modules, the app, its
routes and models) out of every later collection: it lives as long as the
process, and a full collection would otherwise walk all of it each time.
"""

from __future__ import annotations

import gc

# The API and the workers: young collections every 10,000 allocations rather
# than 700 (most young objects of a request or a send are freed by reference
# counting long before), the older generations collected five and ten times
# less often. Measured: the API process spent 0.357 ms of CPU per delivery
# report applied instead of 0.472 (`bench.reports`' client, 100
# connections); a worker's full collections took 100-180 ms every 4.5 s
# while it sent at every vendor's ceiling, and each one left the slots that
# came during it unused (`bench.ceilings`).
SERVER_THRESHOLDS = (10_000, 50, 100)

# The simulators: the third generation's threshold counts collections of
# the second, so a full collection comes only after this many of them, that
# is never while serving.
_FULL_COLLECTION_AFTER = 1_000_000


def collect_less() -> None:
    """For the API and the workers: see `SERVER_THRESHOLDS`."""
    gc.freeze()
    gc.set_threshold(*SERVER_THRESHOLDS)


def no_full_collections() -> None:
    """A vendor's clock does not stop: the simulators' must not either.

    Their record grows with every message (each is kept for inspection),
    and CPython's full collection walks all of it: 165 ms with 12,000
    messages, measured by `bench.ceilings`. Requests that arrive during such
    a pause are stamped together when it ends, and the vendor's busiest
    second reads 125 against a ceiling our sender kept at 95 a second. So
    full collections are left out; young ones still free short-lived
    cycles. The cost, a cycle that outlives two young collections is kept
    until the process ends, is small beside the record itself.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _FULL_COLLECTION_AFTER)
