"""Validating and storing messages, then enqueueing their ids."""
