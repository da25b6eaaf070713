"""Exceptions that are not outcomes.

`ConfigurationError` is deliberately outside every retry path: a wrong base URL
or a missing credential is fixed by an operator, not by trying again.
"""


class ConfigurationError(Exception):
    """Our own setup is wrong (missing credential, malformed base URL)."""


class VendorProtocolError(Exception):
    """The vendor answered in a shape its document does not describe."""
