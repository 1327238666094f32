"""pytest-swapkl: replacement vs interchange swap-KL layer-redundancy audits for transformers.

Importing the package is cheap (no torch): the engine lives in ``pytest_swapkl.engine``.
"""

__version__ = "0.1.0"
