"""Installed as ``redis_ha_health`` (``monitoring`` is too generic a top-level name).
``check_redis_health.py`` also runs as a plain file: it imports nothing from this package."""
