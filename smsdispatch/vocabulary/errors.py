"""The exception tree: every error smsdispatch raises is one of five kinds.

A kind says who has to act and how, so a handler catches the kind it can
answer and lets the others pass: an HTTP handler turns a kind into a status
code, the CLI into a red line and exit status 2, a worker into an outcome.

    SmsdispatchError                     catch-all for "ours, not a bug in a library"
    ├── InputError                       the caller's request is wrong: refuse it, say what
    │   │                                to fix (4xx, exit 2); the same request fails again
    │   ├── InvalidMessage               producer/validation.py     (also ValueError)
    │   ├── CampaignError                campaigns/service.py       (also ValueError)
    │   ├── TemplateError                campaigns/templates.py     (also ValueError)
    │   ├── MissingValue                 campaigns/templates.py     (also ValueError)
    │   ├── RowRejected                  campaigns/preparation.py   (also ValueError)
    │   ├── RecipientListError           campaigns/recipients.py    (also ValueError)
    │   ├── RefusedCallbackUrl           producer/callback_urls.py  (also ValueError)
    │   ├── SignatureError               vocabulary/signatures.py   (also ValueError): a
    │   │                                status callback's receiver refuses the request
    │   └── BodyTooLarge                 api/body_size.py
    ├── NotFoundError                    what the caller named does not exist (404): nothing
    │   │                                to fix in the request's body, only in what it names
    │   ├── CampaignNotFound             campaigns/service.py       (also LookupError)
    │   ├── ApiKeyNotFound               store/api_keys.py          (also LookupError)
    │   ├── NoRouteError                 config/routes.py           (also LookupError)
    │   └── UnknownProviderError         config/catalog.py          (also LookupError)
    ├── ConflictError                    the request is well formed but the thing's current
    │   │                                state refuses it (409): the caller reads the state
    │   │                                and decides, the same request may succeed later
    │   ├── CampaignConflict             campaigns/service.py       (also ValueError)
    │   ├── CampaignNotReady             campaigns/service.py       (also ValueError)
    │   ├── ApiKeyNameTaken              store/api_keys.py          (also ValueError)
    │   └── ImportRefused                campaigns/importer.py      (also ValueError)
    ├── SetupError                       our own configuration is wrong: an operator fixes
    │   │                                it and retrying cannot help; no message is failed
    │   │                                for it (an adapter pauses its vendor instead)
    │   ├── ConfigurationError           providers/errors.py
    │   └── FlowerConfigError            monitoring/flower.py       (also ValueError)
    └── PeerError                        a peer (vendor, database) let us down: the fault
        │                                is on its side, so it is logged against the peer,
        │                                not explained to a caller as a field to fix
        ├── PeerUnavailable              it could not be reached and nothing happened:
        │   │                            try again shortly
        │   └── ClaimFailed              sending/pipeline.py
        └── PeerProtocolError            it answered or reported in a shape its document
            │                            does not describe: keep the evidence (the answer,
            │                            the raw report) and treat what happened as unknown
            │                            rather than guess or repeat it
            ├── VendorProtocolError      providers/errors.py
            └── MalformedReport          vocabulary/delivery.py     (also ValueError)

The standard bases in parentheses stay because code and tests catch these by
them (`except ValueError` around parsing, `LookupError` for a missing name).

`MalformedReport` is a peer's error though the webhook answers it 400: the
vendor is the webhook's caller, but only the vendor can fix its reports, so
the request is kept for inspection rather than explained.

A kind depends on who asks, not only on what happened: `UnknownProviderError`
is the caller's bad input to the validator (which turns it into an
`InvalidMessage` naming `provider`) and a row's reason to fail in the
pipeline. Handlers therefore catch the concrete class where the kind alone
would misreport (the campaign API answers 404 for `CampaignNotFound`, not
for every `NotFoundError`).

Not in the tree: the simulators' `BadRequest` (simulators/messangi.py). It
is the fake vendor's own refusal, raised and answered as a 400 inside the
simulator, and stands for the vendor's code, not ours; making it an
`InputError` would let a handler of ours mistake a vendor's refusal for our
caller's.
"""

from __future__ import annotations


class SmsdispatchError(Exception):
    """Raised on purpose by smsdispatch: one `except` tells ours from a library's."""


class InputError(SmsdispatchError):
    """The caller's request is wrong; the message says what to fix."""


class NotFoundError(SmsdispatchError):
    """What the caller named (a campaign, a provider) does not exist."""


class ConflictError(SmsdispatchError):
    """The request is valid but the current state refuses it; it may not later."""


class SetupError(SmsdispatchError):
    """Our own configuration is wrong: an operator's fix, never a retry's."""


class PeerError(SmsdispatchError):
    """A vendor or the database let us down, not the caller and not our setup."""


class PeerUnavailable(PeerError):
    """The peer could not be reached and nothing happened: try again shortly."""


class PeerProtocolError(PeerError):
    """The peer answered outside its document: what it did is unknown."""
