"""The course notebook's studies as MLflow runs, one command line, and the benchmark.

``python -m experiments list | run NAME... | run all | rerun RUN_ID | cleanup`` (see ``__main__``).

Folders, one kind of thing each (docs/architecture.md draws the layers):

- ``studies/``: one module per experiment (``run(settings) -> Outcome``); the package itself is
  the registry, in the order ``run all`` runs them.
- ``search/``: the architecture search behind the ``sweep`` study (space, validation split,
  Optuna storage, workers, trial and parent runs, summary and champion).
- ``tracking/``: the MLflow run machinery: ``store`` (which store, safe writes with retries and
  held signals), ``runs`` (a run's start, tags and params, and its definite end status),
  ``training`` (``train_logged``: train and log one model, the one training-run path),
  ``arm_runs`` (parent and child runs over arms and seeds), ``datasets``, ``artifacts``,
  ``logged_model``, ``registry``, ``liveness``, ``signals``, ``provenance``.
- ``charts/``: Altair charts (and PIL image grids) shared with the report.
- ``benchmark/``: ``python -m experiments.benchmark``, the training pipelines timed.
- ``server/``: ``python -m experiments.server``, a class's tracking server, and its load test.
- here: what a command asks for (``settings``), what every command line shares (``arguments``),
  the command line (``cli``, ``__main__``), and running several studies (``suite``) or one again
  (``rerun``).
"""
