"""Messages whose final report is late: counted for the SLO figures, and given
up on past their vendor's deadline. One statement each, on indexed columns.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from smsdispatch.store.models import messages
from smsdispatch.vocabulary.status import MessageStatus

# The code of a message given up on for want of a final report.
NO_FINAL_REPORT = "no_final_report"


def expire_unreported(
    session: Session, provider: str, now: datetime, deadline_seconds: float
) -> int:
    """Expire `provider`'s messages accepted more than `deadline_seconds` ago
    with no final report, saying so; how many.

    `expired`, because that is what the message is to whoever waits for it
    (its validity ran out with nobody telling us it arrived), and a status a
    client already handles; the code and reason tell it from the network's
    own expiry. A report that comes later still cannot move it (final
    statuses are never changed: store/reports.py), but is kept with the row.
    """
    m = messages.c
    result = session.execute(
        update(messages)
        .where(
            m.status == MessageStatus.ACCEPTED,
            m.provider == provider,
            m.sent_at < now - timedelta(seconds=deadline_seconds),
        )
        .values(
            status=MessageStatus.EXPIRED,
            error_code=NO_FINAL_REPORT,
            error_reason=f"{provider} accepted it but sent no final report within "
            f"{deadline_seconds:.0f}s (its report deadline)",
            final_at=now,
            updated_at=now,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def awaiting_reports(
    session: Session, now: datetime, after_seconds: float, window_seconds: float
) -> dict[str, tuple[int, int]]:
    """Per vendor, of the messages created between `after_seconds` and
    `after_seconds + window_seconds` ago that a vendor took: (how many have
    no final status yet, how many in all).

    Messages younger than `after_seconds` are left out: their reports are
    simply not due yet. By creation time, so the index on `created_at` bounds
    the scan to the window whatever the table's size.
    """
    m = messages.c
    newest = now - timedelta(seconds=after_seconds)
    oldest = newest - timedelta(seconds=window_seconds)
    waiting = func.sum(case((m.final_at.is_(None), 1), else_=0))
    rows = session.execute(
        select(m.provider, waiting, func.count())
        .where(m.created_at >= oldest, m.created_at < newest, m.sent_at.is_not(None))
        .group_by(m.provider)
    )
    return {provider: (int(w or 0), int(n)) for provider, w, n in rows}
