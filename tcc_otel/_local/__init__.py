"""``tcc-otel dev``: a loopback OTLP/HTTP receiver that prints, stores and serves each run.

Data flows down this list: ``_model`` (received spans), ``_decode`` (request bodies to spans),
``_server`` (the receiver), ``_runs`` (which run a span belongs to), ``_rollup`` (a run's tokens
and cost), ``_tree`` and ``_printer`` (the terminal), ``_store``, ``_api`` and ``_ui`` (SQLite,
the JSON API and the web page).
"""
