"""smsdispatch: a distributed, queue-based bulk SMS sender.

The packages are layers; each imports only from those below it (the
import-linter contract in pyproject.toml checks this in `make lint`):

    cli                                  the operator's commands
    api | tasks | local                  HTTP API and webhooks; Celery tasks; local processes
    workers                              the Celery app and the per-process wiring (Runtime)
    sending | campaigns | reports | analytics   the use cases
    producer                             validate and accept messages
    queueing                             the broker side: publishing, periodic turns, services
    routing                              vendor health, circuit breakers, choosing a vendor
    limits                               rate limits (GCRA), the gate, pauses, the limits view
    monitoring                           counters, /metrics, Flower
    store | providers | simulators       the database; the vendor adapters; the vendor fakes
    config                               settings and the provider catalog
    vocabulary                           statuses, outcomes, messages, keys, task names, errors
"""
