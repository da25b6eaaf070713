"""Routing: which vendor carries a message that names none, and when to look elsewhere.

Vendor health and circuit breakers (health.py) are shared by every worker in
Redis; the routes themselves are in the catalog (config/routes.py).
"""
