"""The MLflow run machinery the studies and the search are built from.

``store`` (which store; connecting; writes retried while SQLite is locked, with SIGINT/SIGTERM held
until they end), ``signals`` (SIGTERM and Ctrl-C as exceptions), ``runs`` (a run's start, tags and
params, and a definite end status; epoch metrics in batches), ``liveness`` (host, pid and heartbeat
tags; ending dead runs), ``training`` (``train_logged``: train one model inside the active run and
log it), ``arm_runs`` (a parent run with one child per arm and seed, and the aggregate),
``datasets`` (FashionMNIST loaded once and logged as an input), ``artifacts`` (files, tables and
charts), ``logged_model`` and ``registry`` (a trained model logged and registered), ``provenance``
(versions, commit). Nothing here imports the studies, the search or the suite.
"""
