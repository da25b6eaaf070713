"""Exceptions that are not outcomes.

`ConfigurationError` is deliberately outside every retry path: a wrong base URL
or a missing credential is fixed by an operator, not by trying again.
"""

from smsdispatch.vocabulary.errors import PeerProtocolError, SetupError


class ConfigurationError(SetupError):
    """Our own setup is wrong (missing credential, malformed base URL)."""


class VendorProtocolError(PeerProtocolError):
    """The vendor answered in a shape its document does not describe."""
