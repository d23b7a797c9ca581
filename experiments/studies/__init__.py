"""The experiments the suite knows, in the order ``run all`` runs them.

Modules are imported lazily so that ``list`` and ``--help`` answer without importing torch
or MLflow.
"""

from __future__ import annotations

import importlib
from types import ModuleType

DESCRIPTIONS: dict[str, str] = {
    "activations": "values and derivatives of every activation on z in [-5, 5]",
    "hand_calculations": "traces of the worked examples, checked against torch autograd",
    "simple_ann": "the SimpleANN(4, 8, 2) demo and its parameter table",
    "synthetic": "CustomANN on the synthetic 4-class data, with decision regions",
    "baseline": "FashionMNISTClassifier 784-512-256-128-10, dropout 0.3, 5 epochs",
    "depth": "TO-DO 4.1: 784-256-10 vs 784-128-64-10 vs 784-128-64-32-16-10",
    "activation_study": "TO-DO 4.2: ReLU, Sigmoid, Tanh, ELU, Leaky ReLU on 784-128-64-10",
    "custom": "your own architecture: --hidden-sizes, --dropout, --lr, --activation",
    "sweep": "Optuna search over CustomANN (--trials, --timeout, --workers); champion registered",
}
EXPERIMENT_NAMES: tuple[str, ...] = tuple(DESCRIPTIONS)
# The module of an experiment whose name would repeat a module of anncore (anncore.activations,
# anncore.hand_calculation); every other experiment's module is its name.
MODULES: dict[str, str] = {"activations": "activation_values", "hand_calculations": "hand_calculation_traces"}


def get_experiment(name: str) -> ModuleType:
    """Import and return the module of experiment ``name``.

    Parameters
    ----------
    name : str
        One of ``EXPERIMENT_NAMES``.

    Returns
    -------
    ModuleType
        A module with ``NEEDS_FASHION_MNIST: bool`` and ``run(context) -> Outcome``.
    """
    if name not in DESCRIPTIONS:
        raise ValueError(f"unknown experiment {name!r}; accepted: {', '.join(EXPERIMENT_NAMES)}")
    return importlib.import_module(f"experiments.studies.{MODULES.get(name, name)}")
