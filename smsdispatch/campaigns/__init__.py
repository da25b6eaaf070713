"""Campaigns: recipient lists, templates, and releasing messages at the vendor's pace."""
