"""The architecture search (``run sweep``): an Optuna study over ``CustomANN`` architectures, every trial an MLflow run.

Modules, in the order a search uses them:

- :mod:`~experiments.search.space`: the parameters searched, the sampler and the pruner;
- :mod:`~experiments.search.split`: the validation split trials are judged on;
- :mod:`~experiments.search.storage`: where the Optuna study lives (SQLite or PostgreSQL);
- :mod:`~experiments.search.plan`: this invocation's study, storage and budget, and the study's signature;
- :mod:`~experiments.search.batching`: how many trials of one shape train together (``--trials-per-batch``);
- :mod:`~experiments.search.invocation`: open the study, run the trials, finish (the entry point);
- :mod:`~experiments.search.workers`: the worker processes that claim and run trials;
- :mod:`~experiments.search.trial`: one trial, trained with ``tracking.training.train_logged``;
- :mod:`~experiments.search.stacked_trials`: K trials of one shape trained as one stack, each its own trial;
- :mod:`~experiments.search.member_runs`: the stack members' MLflow runs, written in bulk;
- :mod:`~experiments.search.runs`: the study's parent run and the trials' child runs in MLflow;
- :mod:`~experiments.search.summary`: the parent's summary and the champion.

The study ``experiments.studies.sweep`` is the suite's thin entry point into this package.
"""
