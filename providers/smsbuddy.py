"""SMSBuddy adapter (skeleton: being written)."""

from __future__ import annotations

import httpx

from config.settings import SMSBuddySettings
from providers.base import Adapter
from providers.message import OutboundMessage
from providers.outcomes import CodeTable, Outcome

CODES: CodeTable = {}


class SMSBuddyAdapter(Adapter[SMSBuddySettings]):
    name = "smsbuddy"
    codes = CODES

    def build_request(self, message: OutboundMessage) -> httpx.Request:
        raise NotImplementedError

    def parse_response(self, response: httpx.Response, message: OutboundMessage) -> Outcome:
        raise NotImplementedError
