"""speechsep: a TensorFlow research kit for single-channel speech separation.

Nothing heavy runs at import time: TensorFlow is only imported by the modules
that need it (models, losses, training, pipeline).
"""

__version__ = "0.1.0"
