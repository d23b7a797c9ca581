"""Log a trained model to the active MLflow run: on the CPU, with a signature and an input example, as ``pt2``.

The baseline and the search's champion log their models this way; :mod:`experiments.tracking.registry`
then registers them.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from experiments.tracking.store import with_retry


def log_model(model, example: np.ndarray):
    """Log ``model`` (on the CPU) with a signature inferred from ``example`` and its outputs; its ``ModelInfo``."""
    import mlflow
    import torch
    from mlflow.models import infer_signature

    model = model.to("cpu").eval()
    with torch.inference_mode():
        outputs = model(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, outputs)
    requirements = [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]
    # MLflow narrates model logging at INFO/WARNING level (pickle format, environment notes);
    # the run's own status says whether it worked.
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return with_retry(
                mlflow.pytorch.log_model,
                model,
                name="model",
                signature=signature,
                input_example=example,
                pip_requirements=requirements,
                # pt2 (torch.export), chosen over pickle: loading it runs no unpickled code, which
                # matters when a student loads a classmate's model from a shared server, and it
                # needs no anncore installed. It is exported in eval mode (dropout off) with a
                # dynamic batch dimension (the example has two rows); load_model gives a
                # GraphModule to call, without .eval() (README, "Using the trained model").
                serialization_format="pt2",
            )
    finally:
        quiet.setLevel(level)
