"""The drill side: a workload recorded through a fault, checked, and reported.

- ``scenarios``: the drills as data (what each does to the lab, when) and ``run_drill``;
- ``history`` (what clients saw, on one clock), ``events`` (what the Sentinels said), ``checker``
  (what was lost, how long writes stopped), ``result``, ``report`` (report.json, report.html), ``story`` (what
  happened, in words), ``timeline`` (timeline.png), ``pages`` (the pages' shared style);
- ``clients``: the client library adapters, ``matrix``: the client matrix (``lab clients``);
- ``steps``: the building blocks the chaos tests and benchmarks compose their own drills from;
- ``gates`` (``--fail-on``) and ``junit`` (``--junit``); ``cli``: ``lab drill`` and ``lab clients``.

Nothing outside this package imports it except the CLI and the pytest plugin (see the layers in
``.importlinter``)."""
