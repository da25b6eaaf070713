"""Starting smsdispatch's processes on one machine: for the demo, tests and benchmarks.

One implementation of "run a private Redis, the simulators, workers, beat and
Flower as real processes", so the demo, the integration tests and the
benchmarks exercise the same thing an operator runs.
"""
