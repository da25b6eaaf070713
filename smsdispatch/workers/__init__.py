"""The Celery app, its queues and beat schedule, and per-process resources."""
