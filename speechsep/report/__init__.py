"""The listening report: static HTML pages with players, spectrograms and tables, opened from ``file://``.

* :mod:`speechsep.report.page`: the page itself (data classes and :func:`~speechsep.report.page.render`);
* :mod:`speechsep.report.build`: runs and test mixtures -> wavs, figures and the page
  (``python -m speechsep report``, every training script's ``report.html``,
  ``Pictures/make_pictures.py``).
"""
