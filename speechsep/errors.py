"""Errors that the library raises and the entry points turn into exit statuses (no TensorFlow, no other import).

Both :mod:`speechsep.cli` (which prints them and picks the exit status) and
:mod:`speechsep.training` (which raises them) import this module, so neither
subpackage imports the other for them.
"""

from __future__ import annotations

LOST_PEER_STATUS = 3
"""Exit status of a worker that lost a peer during training (:class:`PeerLostError`)."""


class PeerLostError(RuntimeError):
    """A worker of a multi-worker run lost a peer mid-training; the message names the lost task.

    Raised by :func:`speechsep.training.distribute.lost_peer_error`. Entry
    points (:func:`speechsep.cli.run_guarded`, the scripts' error hook) print
    it as one ``error: ...`` line and end the process at once with
    :data:`LOST_PEER_STATUS`: after a lost peer TensorFlow may take minutes to
    shut down.
    """
