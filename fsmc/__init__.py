"""fsmc: few-sample model compression that stays fair to minority classes.

This package is the pure library: data sources, samplers, models, compression,
recovery and evaluation. It imports neither Prefect nor MLflow; the
orchestration layers (``tasks/``, ``flows/``) and the DVC stages call into it.
"""

__version__ = "0.1.0"
