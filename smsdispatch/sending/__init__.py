"""The send pipeline run by a worker: claim, send through the adapter, persist."""
