"""Thin Celery tasks: load ids, call plain functions.

The maintenance tasks (sweep, dispatch, reconcile) run every second or ten
and set `send_events = False`: Flower's task list shows the sends, not a
flood of maintenance runs (beat, their only publisher, sends no "task-sent"
either: workers/app.py). Their Celery log lines are DEBUG (config/logs.py);
a run that changed something logs it at INFO itself.
"""
