"""Rate limits, in one place: what may leave for a vendor, and when.

policy.py  what a ceiling means (an emission interval and a burst)
gcra.py    the limiter: one Lua script on Redis, shared by every worker
gate.py    what every request passes just before it leaves: quiet hours, then slots
pauses.py  a vendor paused for every worker (account errors, throttles, an operator)
control.py an operator's pause and resume (CLI and API): a resume lets held rows go
rates.py   the pace a campaign is released at
view.py    the `smsdispatch limits` view: ceilings, use and waiting messages
"""
