"""The words every layer shares, and nothing else: the bottom layer.

Message and campaign statuses (status.py), the kinds of a vendor's answer
(outcomes.py), the message a vendor is sent and its reference (message.py),
a normalized delivery report (delivery.py), the Redis keys (keys.py) and the
Celery task names and queues (names.py) that processes on different hosts
must agree on. It imports nothing of smsdispatch's.
"""
