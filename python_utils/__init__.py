"""Admin toolkit for a production Redis: connections (direct or through Sentinel), sessions, cache,
rate limits and pub/sub. Safe on millions of keys: SCAN (never KEYS), batched UNLINK, streamed
results. The ``redis-admin`` command line wraps all of it.

Installed as ``redis_ha_admin``: this folder keeps its name, but ``python_utils`` is the import name of
PyPI's python-utils (which progressbar2 needs), and one install would overwrite the other."""
