# sentinel.conf for {{ node.name }} ({{ profile_name }} profile) - rendered by redis-ha-lab.
# Sentinel rewrites this file at run time (by rename): render it once into a writable directory
# and never re-render over a running Sentinel's file, or its learned state is lost.
{% if tls.enabled %}
# TLS only: clients and the other Sentinels over TLS; tls-replication: to the data nodes too.
port 0
tls-port {{ node.port }}
tls-cert-file "{{ tls.cert_file }}"
tls-key-file "{{ tls.key_file }}"
tls-ca-cert-file "{{ tls.ca_cert_file }}"
tls-auth-clients {{ tls.auth_clients }}
tls-replication yes
{% else %}
port {{ node.port }}
{% endif %}
bind {{ node.bind | join(' ') }}
{% if node.bind_source_addr %}
bind-source-addr {{ node.bind_source_addr }}
{% endif %}
protected-mode {{ sentinel.protected_mode }}
daemonize no
pidfile "{{ node.pidfile }}"
loglevel {{ sentinel.loglevel }}
logfile "{{ node.logfile }}"
dir "{{ node.dir }}"
{% if auth.acl %}
# Sentinel's own ACL users (passwords as SHA-256); Sentinels log in to each other as {{ auth.peer_user }}.
{% if 'default' not in auth.users | map(attribute='name') %}
user default off resetkeys resetchannels -@all
{% endif %}
{% for user in auth.users %}
user {{ user.name }} on #{{ user.hash }} {{ user.rules }}
{% endfor %}
sentinel sentinel-user {{ auth.peer_user }}
sentinel sentinel-pass "{{ auth.peer_pass }}"
{% elif auth.sentinel_password %}
# Sentinel's own password; Sentinels use it to authenticate to each other too.
requirepass "{{ auth.sentinel_password }}"
{% endif %}
{% if node.announce_ip %}
sentinel announce-ip {{ node.announce_ip }}
{% endif %}
sentinel resolve-hostnames {{ sentinel.resolve_hostnames }}
sentinel announce-hostnames {{ sentinel.announce_hostnames }}
sentinel deny-scripts-reconfig {{ sentinel.deny_scripts_reconfig }}

sentinel monitor {{ master.name }} {{ master.host }} {{ master.port }} {{ sentinel.quorum }}
{% if auth.sentinel_auth_user %}
sentinel auth-user {{ master.name }} {{ auth.sentinel_auth_user }}
{% endif %}
sentinel auth-pass {{ master.name }} "{{ auth.sentinel_auth_pass }}"
sentinel down-after-milliseconds {{ master.name }} {{ sentinel.down_after_milliseconds }}
sentinel failover-timeout {{ master.name }} {{ sentinel.failover_timeout }}
sentinel parallel-syncs {{ master.name }} {{ sentinel.parallel_syncs }}
sentinel master-reboot-down-after-period {{ master.name }} {{ sentinel.master_reboot_down_after_period }}
{% if seed %}

# Lab only: pre-seeded discovery, so the topology is known at start instead of after the
# hello (2 s) and INFO (10 s) rounds. Never render these lines for production.
sentinel myid {{ seed.myid }}
{% for replica in seed.replicas %}
sentinel known-replica {{ master.name }} {{ replica.host }} {{ replica.port }}
{% endfor %}
{% for peer in seed.sentinels %}
sentinel known-sentinel {{ master.name }} {{ peer.host }} {{ peer.port }} {{ peer.myid }}
{% endfor %}
{% endif %}
