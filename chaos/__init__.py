"""Fault injection: the real pipeline under a schedule of faults, counted at the vendors.

In the spirit of Jepsen's total-queue check: every message submitted must
reach its vendor (or fail with a reason), at most once where the vendor can
tell duplicates apart, and not much later than it would without the fault.
"""
