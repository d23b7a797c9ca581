"""The course notebook's studies as MLflow runs: one module per experiment, one command line.

``python -m experiments list | run NAME... | run all | rerun RUN_ID`` (see ``__main__``).
Building blocks, each with one job: ``cli`` (strict argument parsing), ``tracking`` (which
store, and safe access to it), ``runs`` (a run's start, params and definite end status),
``training`` (train and log one model), ``study`` (parent and child runs over arms and seeds),
``suite`` (run several experiments, survive failures, summarise), ``rerun``, ``datasets``,
``artifacts`` and ``image_grids``.
"""
