"""Operations: Prometheus metrics of the whole cluster (see collector.py, counters.py)."""
