"""Operations: what the cluster is doing, seen from outside.

Prometheus counters (counters.py) and the collector read on scrape
(collector.py, web.py), and the Flower launcher (flower.py).
"""
