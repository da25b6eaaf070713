"""What the send path needs from its process (see queueing/services.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sqlalchemy.orm import Session

from smsdispatch.queueing.services import VendorServices


class SendServices(VendorServices, Protocol):
    """Vendor services plus campaign templates, read once per process."""

    def load_templates(self, session: Session, campaign_ids: Iterable[int | None]) -> None: ...

    def campaign_template(self, campaign_id: int | None) -> str | None: ...
