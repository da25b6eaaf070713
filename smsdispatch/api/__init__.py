"""The HTTP API for applications that are not written in Python (FastAPI)."""
