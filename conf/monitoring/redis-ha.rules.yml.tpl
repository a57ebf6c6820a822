# Alert rules for a Redis master with replicas and Sentinels, scraped by redis_exporter (1.45+): one
# job "redis" for the data nodes, one job "sentinel" for the Sentinels. Rendered with a profile's
# monitoring.alerts timers (`lab render`; the lab renders its own fast ones). Every rule is drilled
# against real failovers (docs/monitoring.md: what fires, when, and what must stay quiet).
#
# severity: page (someone must act now), ticket (act today), info (a record: a failover happened).
groups:
  - name: redis-ha-data-nodes
    rules:
      - record: redis_ha:masters:count
        expr: count(redis_instance_info{job="redis", role="master"}) or on() vector(0)
      - alert: RedisDown
        expr: up{job="redis"} == 0 or redis_up{job="redis"} == 0
        for: {{ alerts.node_down }}
        labels:
          severity: page
        annotations:
          summary: A Redis node does not answer its exporter, or its exporter does not answer Prometheus.
          runbook: docs/monitoring.md#redisdown
      - alert: RedisNoMaster
        # No data node Prometheus reaches says it is the master: writes fail. A failover has none for
        # down-after plus the election; the timer must outlast that or every clean failover pages. Only
        # once Prometheus has targets: right after it starts it has none for seconds (no false page).
        expr: redis_ha:masters:count < 1 and on() count(up{job="redis"}) > 0
        for: {{ alerts.no_master }}
        labels:
          severity: page
        annotations:
          summary: No reachable Redis node is a master.
          runbook: docs/monitoring.md#redisnomaster
      - alert: RedisTooManyMasters
        # Two nodes both say master: a partitioned old master still taking writes (lost when it rejoins).
        # A safe failover shows two for a moment (the old master, paused, is demoted last).
        expr: redis_ha:masters:count > 1
        for: {{ alerts.two_masters }}
        labels:
          severity: page
        annotations:
          summary: More than one reachable Redis node says it is the master.
          runbook: docs/monitoring.md#redistoomanymasters
      - alert: RedisReplicationBroken
        expr: redis_master_link_up{job="redis"} == 0
        for: {{ alerts.replication }}
        labels:
          severity: ticket
        annotations:
          summary: A replica's link to its master is down.
          runbook: docs/monitoring.md#redisreplicationbroken
      - alert: RedisReplicaLagging
        expr: redis_connected_slave_lag_seconds{job="redis"} > 10
        for: {{ alerts.replication }}
        labels:
          severity: ticket
        annotations:
          summary: A replica has not acknowledged the replication stream for more than 10 s.
          runbook: docs/monitoring.md#redisreplicalagging
      - alert: RedisMemoryHigh
        expr: redis_memory_max_bytes{job="redis"} > 0 and redis_memory_used_bytes{job="redis"} / redis_memory_max_bytes{job="redis"} > 0.9
        for: {{ alerts.resources }}
        labels:
          severity: ticket
        annotations:
          summary: A node uses more than 90% of its maxmemory (evictions, or refused writes under noeviction).
          runbook: docs/monitoring.md#redismemoryhigh
      - alert: RedisRejectedConnections
        expr: increase(redis_rejected_connections_total{job="redis"}[5m]) > 0
        labels:
          severity: ticket
        annotations:
          summary: A node refused connections (maxclients) in the last 5 minutes.
          runbook: docs/monitoring.md#redisrejectedconnections
      - alert: RedisPersistenceFailing
        expr: redis_rdb_last_bgsave_status{job="redis"} == 0 or redis_aof_last_write_status{job="redis"} == 0
        for: {{ alerts.node_down }}
        labels:
          severity: page
        annotations:
          summary: The last RDB save or AOF write failed (with stop-writes-on-bgsave-error, writes are refused).
          runbook: docs/monitoring.md#redispersistencefailing

  - name: redis-ha-sentinel
    rules:
      - record: redis_ha:sentinel_masters:count
        expr: count by (master_name) (count by (master_name, master_address) (redis_sentinel_master_status{job="sentinel"}))
      - alert: SentinelMasterDown
        # A Sentinel sees the master down (sdown, odown) for longer than a failover takes: no failover
        # is happening (no quorum, no promotable replica, failover-timeout).
        expr: redis_sentinel_master_status{job="sentinel"} == 0
        for: {{ alerts.sentinel }}
        labels:
          severity: page
        annotations:
          summary: A Sentinel has seen the master down for longer than a failover takes.
          runbook: docs/monitoring.md#sentinelmasterdown
      - alert: SentinelsDisagree
        expr: redis_ha:sentinel_masters:count > 1
        for: {{ alerts.sentinel }}
        labels:
          severity: page
        annotations:
          summary: The Sentinels name different masters.
          runbook: docs/monitoring.md#sentinelsdisagree
      - alert: SentinelQuorumLost
        expr: redis_sentinel_master_ckquorum_status{job="sentinel"} == 0
        for: {{ alerts.sentinel }}
        labels:
          severity: page
        annotations:
          summary: SENTINEL CKQUORUM fails - the next master failure gets no failover.
          runbook: docs/monitoring.md#sentinelquorumlost
      - alert: SentinelDown
        expr: up{job="sentinel"} == 0 or redis_up{job="sentinel"} == 0
        for: {{ alerts.sentinel_peer }}
        labels:
          severity: ticket
        annotations:
          summary: A Sentinel does not answer.
          runbook: docs/monitoring.md#sentineldown
      - alert: SentinelPeerMissing
        expr: redis_sentinel_master_ok_sentinels{job="sentinel"} < redis_sentinel_master_sentinels{job="sentinel"}
        for: {{ alerts.sentinel_peer }}
        labels:
          severity: ticket
        annotations:
          summary: A Sentinel sees one of its known peers down.
          runbook: docs/monitoring.md#sentinelpeermissing
      - alert: SentinelReplicaMissing
        expr: redis_sentinel_master_ok_slaves{job="sentinel"} < redis_sentinel_master_slaves{job="sentinel"}
        for: {{ alerts.replication }}
        labels:
          severity: ticket
        annotations:
          summary: A Sentinel sees one of the master's known replicas down.
          runbook: docs/monitoring.md#sentinelreplicamissing
      - alert: SentinelTilt
        expr: redis_sentinel_tilt{job="sentinel"} == 1
        for: {{ alerts.tilt }}
        labels:
          severity: ticket
        annotations:
          summary: A Sentinel is in TILT mode (its clock jumped or it was stalled) and acts on nothing.
          runbook: docs/monitoring.md#sentineltilt
      - alert: RedisFailover
        # The Sentinels named more than one master within the window: a failover happened (a record,
        # not a page: a clean failover is the system working).
        expr: count by (master_name) (count by (master_name, master_address) (last_over_time(redis_sentinel_master_status{job="sentinel"}[{{ alerts.failover_window }}]))) > 1
        labels:
          severity: info
        annotations:
          summary: The master changed within the last {{ alerts.failover_window }}.
          runbook: docs/monitoring.md#redisfailover
