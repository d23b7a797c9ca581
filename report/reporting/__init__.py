"""Helpers for the Quarto report: read the MLflow store, shape tables, build charts and LaTeX.

The ``report/*.qmd`` chunks call these so the documents stay thin; every number the report
shows comes from a finished MLflow run (or, for theory, from anncore itself).
"""
