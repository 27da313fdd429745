"""``skingen evaluate``: how close generated images are to real ones, whether they show their condition, and
whether both hold for every skin tone.

- :mod:`.inputs`: the real set (prepared DATA or a folder) and the generated set (folder or bundle), labelled;
- :mod:`.features`: a local image encoder (CLIP or any transformers image model) → features;
  :mod:`.inception`: clean-fid's Inception features, for the FID papers report;
- :mod:`.names`: every metric's key (a distance is named by its feature space: ``fd_clip``; ``fid`` only for
  Inception) and which ones groups may be compared on;
- :mod:`.distances`: Fréchet and kernel distances with jackknife intervals (FD∞), FD at equal n;
- :mod:`.metrics`: precision/recall/density/coverage, CLIP score, diversity, bootstrap;
- :mod:`.skin_fidelity`: the skin tone each generated image shows against the one its prompt asked for;
- :mod:`.closed_loop`: a diagnoser re-diagnoses every generated image;
- :mod:`.groups`: per Fitzpatrick group and type, and the gap between groups in words;
- :mod:`.evaluator`: the steps in order; :mod:`.report`: ``metrics.json`` + ``report.html``.

Only :mod:`.features`, :mod:`.inception`, :mod:`.distances` and :mod:`.metrics` need torch, and import it
themselves.
"""
