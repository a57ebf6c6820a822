"""Pub/sub diagnostics: active channels, subscriber counts, pattern and shard subscriptions, and
a test publish."""

from __future__ import annotations

from typing import Any

import redis

from redis_ha_admin.values import text


class PubSubAdmin:
    def __init__(self, redis_client: redis.Redis) -> None:
        self.client = redis_client

    def list_active_channels(self, pattern: str = "*") -> list[str]:
        """Channels with at least one subscriber (PUBSUB CHANNELS), sorted."""
        return sorted(text(c) for c in self.client.pubsub_channels(pattern))

    def get_channel_subscriber_count(self, channel_name: str) -> int:
        for channel, count in self.client.pubsub_numsub(channel_name):
            if text(channel) == channel_name:
                return int(count)
        return 0

    def get_pattern_subscription_count(self) -> int:
        """PUBSUB NUMPAT: pattern subscriptions across all clients."""
        return int(self.client.pubsub_numpat())

    def list_shard_channels(self, pattern: str = "*") -> list[str] | None:
        """Shard channels (Redis 7+, PUBSUB SHARDCHANNELS); None on a server without them."""
        try:
            reply: Any = self.client.execute_command("PUBSUB", "SHARDCHANNELS", pattern)  # type: ignore[no-untyped-call]
        except redis.ResponseError:
            return None
        return sorted(text(c) for c in reply)

    def publish_test_message(self, channel_name: str, message: str) -> int:
        """PUBLISH; returns how many subscribers received it."""
        return int(self.client.publish(channel_name, message))
