"""Where each vendor posts delivery reports, and how a report proves it came from there.

Every vendor gets its own unguessable token in the path of its report URL:

    {PUBLIC_BASE_URL}/reports/<vendor>/<token>
    token = HMAC-SHA256(REPORT_SECRET, "smsdispatch-reports:<vendor>"), hex, 40 characters

Why one secret and derived tokens: one value to configure and rotate, and a
vendor that leaks its URL (in its own logs, say) gives away only its token,
not a way to forge another vendor's reports. A token in the path works with
every vendor, including those whose callbacks cannot carry a header or
credentials (Cue appends our query to the URL; Skycore's postback URL is an
account setting). Rotating REPORT_SECRET changes every URL: messages sent
before the change report to the old URLs, which then answer 404, and
reconciliation settles them instead.
"""

from __future__ import annotations

import hashlib
import hmac

from smsdispatch.config.settings import Settings

TOKEN_CHARS = 40


def report_token(settings: Settings, provider: str) -> str | None:
    """The vendor's token, or None when no REPORT_SECRET is configured."""
    secret = settings.report_secret.get_secret_value()
    if not secret:
        return None
    digest = hmac.new(secret.encode(), f"smsdispatch-reports:{provider}".encode(), hashlib.sha256)
    return digest.hexdigest()[:TOKEN_CHARS]


def report_url(settings: Settings, provider: str) -> str | None:
    """The URL the vendor should post this account's reports to, if any."""
    base = settings.public_base_url.rstrip("/")
    token = report_token(settings, provider)
    if not base or token is None:
        return None
    return f"{base}/reports/{provider}/{token}"


def token_valid(expected: str | None, given: str) -> bool:
    """Whether `given` is the vendor's token (`report_token`), compared in
    constant time; never when there is none."""
    if expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
