"""Every Redis key smsdispatch writes (besides Celery's own), in one place."""

PREFIX = "smsdispatch"


def pause(provider: str) -> str:
    """A vendor's pause: value is the reason; the key's TTL is the pause."""
    return f"{PREFIX}:pause:{provider}"
