"""The benchmark: the notebook's training pipeline against anncore's, timed in one process.

``cli`` (``python -m experiments.benchmark``: options, set-up, the run), ``pipelines`` (the four
training pipelines), ``figures`` (medians, ratios, targets), ``results`` (printout, MLflow),
``memory`` (peak memory of one pipeline run).
"""
