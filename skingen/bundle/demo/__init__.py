"""The demo stimulus bundle: procedurally drawn, clearly labelled synthetic skin images (no downloads, no torch).

- :mod:`~skingen.bundle.demo.drawing`: the numpy + Pillow painters.
- ``material.yaml`` / :mod:`~skingen.bundle.demo.material`: what is drawn — conditions, skin tones and the ten
  cases with the demo AI's fixed answers (three of them deliberately wrong) — loaded and validated.
- :mod:`~skingen.bundle.demo.writer`: :func:`~skingen.bundle.demo.writer.build_demo_bundle`, through the
  bundle-writing code the pipeline uses too (:mod:`skingen.bundle.writing`).
"""
