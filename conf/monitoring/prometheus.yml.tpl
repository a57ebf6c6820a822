# Prometheus for one lab, rendered by lab.monitoring (0600): one exporter per node on 127.0.0.1.
global:
  scrape_interval: {{ scrape_interval }}
  scrape_timeout: {{ scrape_interval }}
  evaluation_interval: {{ evaluation_interval }}
  external_labels:
    lab: {{ lab }}
rule_files:
  - rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{{ alertmanager_port }}"]
scrape_configs:
{% for job in ("redis", "sentinel") %}
  - job_name: {{ job }}
    static_configs:
{% for target in exporters if target.kind == job %}
      - targets: ["127.0.0.1:{{ target.port }}"]
        labels:
          instance: {{ target.name }}
{% endfor %}
{% endfor %}
{% if health_port %}
  # check-redis-health (scripts/monitoring/), run once per scrape: its verdicts beside the alerts
  - job_name: health
    static_configs:
      - targets: ["127.0.0.1:{{ health_port }}"]
        labels:
          instance: {{ health_instance }}
    metric_relabel_configs:  # its verdicts only (it also writes exporter-named series, e.g. redis_up)
      - source_labels: [__name__]
        regex: redis_health_.*
        action: keep
{% endif %}
