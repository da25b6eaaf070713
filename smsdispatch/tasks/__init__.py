"""Thin Celery tasks: load ids, call plain functions."""
