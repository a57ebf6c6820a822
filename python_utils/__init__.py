"""Admin toolkit for a production Redis: connections (direct or through Sentinel), sessions, cache,
rate limits and pub/sub. Safe on millions of keys: SCAN (never KEYS), batched UNLINK, streamed
results. The ``redis-admin`` command line wraps all of it."""
