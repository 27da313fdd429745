"""``skingen evaluate``: how close generated images are to real ones, whether they show their condition, and
whether both hold for every skin tone.

- :mod:`.inputs`: the real set (prepared DATA or a folder) and the generated set (folder or bundle), labelled;
- :mod:`.features`: a local image encoder (CLIP or any transformers image model) → features;
- :mod:`.metrics`: FID/KID (torchmetrics), precision/recall/density/coverage, CLIP score, diversity, bootstrap;
- :mod:`.closed_loop`: a diagnoser re-diagnoses every generated image;
- :mod:`.groups`: per Fitzpatrick group and type, and the gap between groups in words;
- :mod:`.evaluator`: the steps in order; :mod:`.report`: ``metrics.json`` + ``report.html``.

Only :mod:`.features` and :mod:`.metrics` need torch, and import it themselves.
"""
