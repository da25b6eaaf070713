"""Vendor adapters: one module per vendor, one normalized vocabulary.

    Outcome kinds (providers.outcomes.OutcomeKind)
    ├── ACCEPTED      the vendor took the message; its tracking id is kept
    ├── RETRY         it did not land (5xx, connect error, "system error"): back off, resend
    ├── RATE_LIMITED  throttled (429, queue overflow): wait, no retry budget used
    ├── PERMANENT     this message can never go (bad number, blacklisted, too long): fail it
    ├── ACCOUNT       the account cannot send (bad key, no credit, suspended): pause the vendor
    └── AMBIGUOUS     the request left and the answer was lost: reconcile, do not resend blindly

Exceptions are kept for what is not an outcome: `ConfigurationError` (our
setup is wrong; never retried) and `VendorProtocolError` (the vendor answered
something its document does not describe).
"""
