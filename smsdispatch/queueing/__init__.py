"""The broker side of a process: what the use cases need besides the database.

Publishing message ids on each vendor's queue (publish.py), one run at a
time of a periodic task across hosts (periodic.py), how many ids Redis holds
(backlog.py), and the protocols of the services a use case is handed
(services.py), which the per-process wiring (workers/runtime.py) satisfies.
"""
