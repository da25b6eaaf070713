"""Delivery reports: how a message's final status comes back. Start here.

    urls.py          where each vendor posts its reports, and the token that proves it
    reconcile.py     asking vendors (status queries, lost-send searches) where no report came

The rest of the path, each in the layer it belongs to:

    providers/<vendor>.py   parse_report: the vendor's report into a DeliveryReport
    providers/reports.py    the parsing every vendor shares
    vocabulary/delivery.py  DeliveryReport, IncomingReport: the normalized types
    store/reports.py        applying a report to its message, forward-only
    api/reports.py          the webhook: token check, parse, record, apply
"""
