"""The course notebook's studies as MLflow runs, one command line, and the benchmark.

``python -m experiments list | run NAME... | run all | rerun RUN_ID`` (see ``__main__``).

Folders, one kind of thing each:

- ``studies/``: one module per experiment (``run(settings) -> Outcome``); the package itself is
  the registry, in the order ``run all`` runs them.
- ``tracking/``: the MLflow run machinery: ``store`` (which store, safe writes with retries and
  held signals), ``runs`` (a run's start, params and definite end status), ``training`` (train and
  log one model), ``study`` (parent and child runs over arms and seeds), ``datasets``,
  ``artifacts``, ``provenance``.
- ``charts/``: Altair charts (and PIL image grids) shared with the report.
- ``benchmark/``: ``python -m experiments.benchmark``, the training pipelines timed.
- here: the command line (``cli``, ``__main__``), what a command asks for (``settings``), and
  running several studies (``suite``) or one again (``rerun``).
"""
