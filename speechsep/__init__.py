"""speechsep: a TensorFlow research kit for single-channel speech separation.

Nothing heavy runs at import time: TensorFlow is only imported by the modules
that need it (models, losses, training, pipeline). Importing the kit leaves
the process alone (environment, ``sys.excepthook``, the import machinery):
the quiet TensorFlow start-up and the one-line errors belong to the entry
points (the scripts, ``python -m speechsep``, the benchmarks), which call
:func:`speechsep.cli.program_start`.
"""

__version__ = "0.1.0"
