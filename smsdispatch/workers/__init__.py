"""The Celery app (app.py) and the per-process wiring (runtime.py): the roof.

`Runtime` builds, once per process after fork, everything the use cases are
handed: settings, the catalog, the database and its clock, Redis, the
limiter and gate, the HTTP client and the vendor adapters.
"""
