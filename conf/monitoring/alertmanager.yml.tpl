# Alertmanager for one lab, rendered by lab.monitoring (0600). Every notification goes to the lab's
# webhook, which records it (monitoring/notifications.jsonl): "page" is what would wake someone.
route:
  receiver: ticket
  group_by: ["..."]
  group_wait: {{ group_wait }}
  group_interval: {{ group_wait }}
  repeat_interval: 4h
  routes:
    - matchers: ['source=~".+"']
      receiver: community
    - matchers: ['severity="page"']
      receiver: page
receivers:
{% for receiver in ("page", "ticket", "community") %}
  - name: {{ receiver }}
    webhook_configs:
      - url: http://127.0.0.1:{{ webhook_port }}/{{ receiver }}
        send_resolved: true
{% endfor %}
