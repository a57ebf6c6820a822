# redis.conf for {{ node.name }} ({{ profile_name }} profile) - rendered by redis-ha-lab.
# Edit conf/redis.conf.tpl or the profile, not this file. Plain Jinja2: Ansible's template module
# renders it unchanged given the same variables (node, master, redis, auth, databases).
{% for path in redis.include %}
include "{{ path }}"
{% endfor %}

################################## NETWORK #####################################
bind {{ node.bind | join(' ') }}
{% if node.bind_source_addr %}
bind-source-addr {{ node.bind_source_addr }}
{% endif %}
protected-mode {{ redis.protected_mode }}
{% if tls.enabled %}
# TLS only: no plain-text port.
port 0
tls-port {{ node.port }}
{% else %}
port {{ node.port }}
{% endif %}
tcp-backlog {{ redis.tcp_backlog }}
timeout {{ redis.timeout }}
tcp-keepalive {{ redis.tcp_keepalive }}
{% if tls.enabled %}

################################# TLS ##########################################
tls-cert-file "{{ tls.cert_file }}"
tls-key-file "{{ tls.key_file }}"
tls-ca-cert-file "{{ tls.ca_cert_file }}"
tls-auth-clients {{ tls.auth_clients }}
# replicas to their master, and Sentinel to this node, over TLS too
tls-replication yes
tls-cluster no
{% endif %}

################################# GENERAL #####################################
daemonize no
supervised no
pidfile "{{ node.pidfile }}"
loglevel {{ redis.loglevel }}
logfile "{{ node.logfile }}"
databases {{ redis.databases }}
# application databases: sessions {{ databases.session }}, cache {{ databases.cache }}, pub/sub {{ databases.pubsub }}

################################ SNAPSHOTTING  ################################
{% for rule in redis.save %}
save {{ rule }}
{% else %}
save ""
{% endfor %}
stop-writes-on-bgsave-error {{ redis.stop_writes_on_bgsave_error }}
rdbcompression {{ redis.rdbcompression }}
rdbchecksum yes
dbfilename {{ redis.dbfilename }}
dir "{{ node.dir }}"

################################# REPLICATION #################################
{% if node.role == 'replica' %}
replicaof {{ master.host }} {{ master.port }}
{% endif %}
# masterauth on every node: a master becomes a replica after a failover.
{% if auth.masteruser %}
masteruser {{ auth.masteruser }}
{% endif %}
masterauth "{{ auth.masterauth }}"
replica-serve-stale-data {{ redis.replica_serve_stale_data }}
replica-read-only {{ redis.replica_read_only }}
repl-diskless-sync {{ redis.repl_diskless_sync }}
repl-diskless-sync-delay {{ redis.repl_diskless_sync_delay }}
repl-timeout {{ redis.repl_timeout }}
repl-backlog-size {{ redis.repl_backlog_size }}
replica-priority {{ node.replica_priority }}
{% if node.announce_ip %}
replica-announce-ip {{ node.announce_ip }}
{% endif %}
min-replicas-to-write {{ redis.min_replicas_to_write }}
min-replicas-max-lag {{ redis.min_replicas_max_lag }}

################################## SECURITY ###################################
{% if auth.acl %}
# ACL users (passwords as SHA-256); the default user is off unless the profile defines it.
{% if 'default' not in auth.users | map(attribute='name') %}
user default off resetkeys resetchannels -@all
{% endif %}
{% for user in auth.users %}
user {{ user.name }} on #{{ user.hash }} {{ user.rules }}
{% endfor %}
{% else %}
requirepass "{{ auth.password }}"
{% endif %}
enable-debug-command {{ redis.enable_debug_command }}
enable-protected-configs {{ redis.enable_protected_configs }}

################################### CLIENTS ####################################
maxclients {{ redis.maxclients }}

############################## MEMORY MANAGEMENT ################################
maxmemory {{ redis.maxmemory }}
maxmemory-policy {{ redis.maxmemory_policy }}
maxmemory-samples {{ redis.maxmemory_samples }}

############################# LAZY FREEING ####################################
lazyfree-lazy-eviction {{ redis.lazyfree }}
lazyfree-lazy-expire {{ redis.lazyfree }}
lazyfree-lazy-server-del {{ redis.lazyfree }}
lazyfree-lazy-user-del {{ redis.lazyfree }}
replica-lazy-flush {{ redis.lazyfree }}

############################## APPEND ONLY MODE ###############################
appendonly {{ redis.appendonly }}
appendfilename "{{ redis.appendfilename }}"
appenddirname "{{ redis.appenddirname }}"
appendfsync {{ redis.appendfsync }}
no-appendfsync-on-rewrite {{ redis.no_appendfsync_on_rewrite }}
auto-aof-rewrite-percentage {{ redis.auto_aof_rewrite_percentage }}
auto-aof-rewrite-min-size {{ redis.auto_aof_rewrite_min_size }}
aof-use-rdb-preamble {{ redis.aof_use_rdb_preamble }}

################################## SLOW LOG ###################################
slowlog-log-slower-than {{ redis.slowlog_log_slower_than }}
slowlog-max-len {{ redis.slowlog_max_len }}
latency-monitor-threshold {{ redis.latency_monitor_threshold }}

############################# EVENT NOTIFICATION ##############################
notify-keyspace-events "{{ redis.notify_keyspace_events }}"

############################### ADVANCED CONFIG ###############################
{% for limit in redis.client_output_buffer_limit %}
client-output-buffer-limit {{ limit }}
{% endfor %}
