"""Vendor adapters: one module per vendor, one normalized vocabulary.

Each answer becomes an `Outcome` of one of the eight kinds drawn in
vocabulary/outcomes.py.

Two exceptions are raised inside vendor modules and turned into outcomes by
the shared flow: `ConfigurationError` (our setup is wrong: the vendor is
paused with the fix as its reason, never retried blindly) and
`VendorProtocolError` (the vendor answered something its document does not
describe).
"""
