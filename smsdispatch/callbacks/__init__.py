"""Status callbacks to client applications: signed POSTs of every status change.

A receiver needs only this module's `verify_signature` (standard library
only; importing it loads nothing else of smsdispatch):

    from smsdispatch.callbacks import verify_signature
    ok = verify_signature(raw_body, request.headers["Smsdispatch-Signature"], secret)

The rest of the package delivers them: `delivery.py` (the POST, its
classification and back-off), `worker.py` (claim, post on the runtime's
loop, record).
"""

from smsdispatch.vocabulary.signatures import (
    HEADER,
    SignatureError,
    check_signature,
    verify_signature,
)

__all__ = ["HEADER", "SignatureError", "check_signature", "verify_signature"]
