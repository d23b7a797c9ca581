"""The MLflow run machinery the studies are built from.

``store`` (which store; connecting; writes retried while SQLite is locked, with SIGINT/SIGTERM held
until they end), ``runs`` (a run's start, tags and params, and a definite end status; epoch metrics
in batches), ``training`` (train one model inside the active run and log it), ``study`` (a parent
run with one child per arm and seed, and the aggregate), ``datasets`` (FashionMNIST loaded once and
logged as an input), ``artifacts`` (files, tables and charts), ``provenance`` (versions, commit).
"""
