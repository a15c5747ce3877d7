"""speechsep: a TensorFlow research kit for single-channel speech separation.

Nothing heavy runs at import time: TensorFlow is only imported by the modules
that need it (models, losses, training, pipeline).
"""

from speechsep import _quiet

# Quieten TensorFlow's C++ start-up chatter for every entry point, before anything imports
# TensorFlow (users can override TF_CPP_MIN_LOG_LEVEL); see speechsep/_quiet.py.
_quiet.install()

__version__ = "0.1.0"
