"""speechsep: a TensorFlow research kit for single-channel speech separation.

Nothing heavy runs at import time: TensorFlow is only imported by the modules
that need it (models, losses, training, pipeline).
"""

import os as _os

# Quieten TensorFlow's C++ start-up chatter for every entry point (users can override).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
