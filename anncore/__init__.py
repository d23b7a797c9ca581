"""anncore: artificial neural networks from hand calculations to FashionMNIST.

Submodules, each with one job: ``activations`` (NumPy reference functions and the
name registry shared with PyTorch), ``hand_calculation`` (forward/backward traces of
tiny dense networks), ``worked_examples`` (the course notebook's examples),
``models`` (PyTorch MLPs), ``data`` (FashionMNIST and synthetic data as tensors) and
``trainer`` (training and evaluation).
"""

__version__ = "0.1.0"
