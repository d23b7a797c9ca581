"""What the architecture search searches, and how Optuna proposes and prunes trials.

The space (see :data:`SEARCH_SPACE`): 1 to 4 hidden layers, each 32 to 1024 wide (powers of
two), a hidden activation from ``anncore.activations``, dropout in [0, 0.5], Adam with a
log-uniform learning rate in [1e-4, 3e-2] and a batch size of 64, 128 or 256. A seeded TPE
sampler proposes trials; a median pruner stops a trial whose validation accuracy after an
epoch (from the second on) is below the median of earlier trials at that epoch.

To add a search parameter: draw it in :func:`suggest`, describe it in :data:`SEARCH_SPACE`,
use it in :func:`model_config` (the architecture trials and the champion train) or in
:mod:`experiments.search.trial` (a training option), and bump :data:`SPACE_VERSION`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from anncore.models import ModelConfig

MAX_HIDDEN_LAYERS = 4
WIDTHS = (32, 64, 128, 256, 512, 1024)
DROPOUT_RANGE = (0.0, 0.5)
LEARNING_RATE_RANGE = (1e-4, 3e-2)
BATCH_SIZES = (64, 128, 256)
TPE_STARTUP_TRIALS = 5  # random trials before TPE models the results
PRUNER_STARTUP_TRIALS = 2  # trials that run to the end before the pruner compares
PRUNER_WARMUP_EPOCHS = 2  # steps are 1-based epochs and Optuna judges step >= this: never after epoch 1 (too noisy)
SPACE_VERSION = 1  # bump when the space changes: a study cannot mix two spaces
SEARCH_SPACE = (
    {"parameter": "n_hidden_layers", "distribution": "integer", "values": f"1 to {MAX_HIDDEN_LAYERS}"},
    {"parameter": "width_k", "distribution": "categorical (one per hidden layer)", "values": ", ".join(map(str, WIDTHS))},
    {"parameter": "activation", "distribution": "categorical", "values": "the hidden activations of anncore.activations"},
    {"parameter": "dropout", "distribution": "uniform", "values": f"{DROPOUT_RANGE[0]} to {DROPOUT_RANGE[1]}"},
    {"parameter": "learning_rate", "distribution": "log-uniform", "values": f"{LEARNING_RATE_RANGE[0]:g} to {LEARNING_RATE_RANGE[1]:g}"},
    {"parameter": "batch_size", "distribution": "categorical", "values": ", ".join(map(str, BATCH_SIZES))},
    {"parameter": "optimizer", "distribution": "fixed", "values": "adam"},
)
PANEL_PARAMETERS = ["n_hidden_layers", "width_1", "activation", "dropout", "learning_rate", "batch_size"]
SAMPLER_DESCRIPTION = f"TPESampler(n_startup_trials={TPE_STARTUP_TRIALS})"
PRUNER_DESCRIPTION = f"MedianPruner(n_startup_trials={PRUNER_STARTUP_TRIALS}, n_warmup_steps={PRUNER_WARMUP_EPOCHS})"


def hidden_activations() -> list[str]:
    """The activation names a hidden layer may use: the registry's, softmax left out."""
    from anncore.activations import ACTIVATION_NAMES

    return [name for name in ACTIVATION_NAMES if name != "softmax"]


def suggest(trial: optuna.Trial) -> dict[str, int | float | str]:
    """Draw one configuration from the search space for Optuna ``trial``."""
    n_layers = trial.suggest_int("n_hidden_layers", 1, MAX_HIDDEN_LAYERS)
    params: dict[str, int | float | str] = {"n_hidden_layers": n_layers}
    for k in range(1, n_layers + 1):
        params[f"width_{k}"] = trial.suggest_categorical(f"width_{k}", list(WIDTHS))
    params["activation"] = trial.suggest_categorical("activation", hidden_activations())
    params["dropout"] = trial.suggest_float("dropout", *DROPOUT_RANGE)
    params["learning_rate"] = trial.suggest_float("learning_rate", *LEARNING_RATE_RANGE, log=True)
    params["batch_size"] = trial.suggest_categorical("batch_size", list(BATCH_SIZES))
    return params


def layer_sizes(params: dict[str, int | float | str]) -> list[int]:
    """``[784, width_1, ..., width_n, 10]`` of a configuration."""
    widths = [int(params[f"width_{k}"]) for k in range(1, int(params["n_hidden_layers"]) + 1)]
    return [28 * 28, *widths, 10]


def model_config(params: dict[str, int | float | str]) -> ModelConfig:
    """The architecture a configuration describes: its layer sizes, hidden activation and dropout."""
    from anncore.models import ModelConfig

    return ModelConfig(tuple(layer_sizes(params)), str(params["activation"]), float(params["dropout"]))


def make_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """Seeded TPE."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS)


def make_pruner() -> optuna.pruners.BasePruner:
    """Median pruning on the per-epoch validation accuracy."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS)
