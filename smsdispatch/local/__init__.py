"""The whole system as processes on one machine: for the demo, tests and benchmarks.

One implementation of "run a private Redis, the simulators, workers, beat and
Flower as real processes" (processes.py), the environment that points them
at each other (environment.py), catalogs with overrides (catalogs.py), and
ASGI apps served from a background thread (serve.py, simulators.py), so the
demo, the integration tests and the benchmarks exercise what an operator runs.
"""
