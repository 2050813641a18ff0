"""Shipped models: the catalog of embedded models and the export format (:mod:`.catalog`), checked checkpoint
loading (:mod:`.safe_load`) and the weights themselves (``weights/``, with their own LICENSE)."""
