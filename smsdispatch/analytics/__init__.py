"""`smsdispatch report`: what happened to a period's messages (queries, tables, a chart)."""
