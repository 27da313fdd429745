"""``skingen data prepare``: a public dermatology dataset's own label files + local images → ``DATA/``.

One reader per dataset turns its files, in their published column layouts, into :class:`RawRecord` s
(``fitzpatrick17k.py``, ``ddi.py``, ``scin.py``, ``folder.py``; listed in ``formats.py``); one pipeline
(``pipeline.py``) maps the labels onto the taxonomy → drops near-duplicate images → splits train/validation →
writes the prepared set (format: :mod:`skingen.dataset`) and its data card (``datacard.py``). Nothing is
downloaded. Torch-free: it needs only csv, PIL, imagehash and plotly.
"""
