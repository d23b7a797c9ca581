"""A tracking server for a class: PostgreSQL and ``mlflow server`` (``python -m experiments.server``)."""
