"""Vendor adapters: one module per vendor, one normalized vocabulary.

    Outcome kinds (smsdispatch.vocabulary.outcomes.OutcomeKind)
    ├── ACCEPTED      the vendor took the message; its tracking id is kept
    ├── RETRY         it did not land (5xx, connect error, "system error"): back off, resend
    ├── RATE_LIMITED  throttled (429, queue overflow): wait, no retry budget used
    ├── PERMANENT     this message can never go (bad number, blacklisted, too long): fail it
    ├── ACCOUNT       the account cannot send (bad key, no credit, suspended): pause the vendor
    └── AMBIGUOUS     the request left and the answer was lost: reconcile, do not resend blindly

Two exceptions are raised inside vendor modules and turned into outcomes by
the shared flow: `ConfigurationError` (our setup is wrong: the vendor is
paused with the fix as its reason, never retried blindly) and
`VendorProtocolError` (the vendor answered something its document does not
describe).
"""
