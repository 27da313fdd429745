"""The ``skingen`` commands, one module each: its parser, its checks (flags → a frozen config, every error
naming the flag), the config, and ``run(config)``.

Flags several commands take are defined once: :mod:`.flags` (device, dtype, taxonomy, templates),
:mod:`.generator_flags` (the Stable Diffusion model and sampling), :mod:`.evaluation_flags` (the image sets and
metric settings of ``evaluate`` and ``bundle build --evaluate``); :mod:`.command` is what every command module
hands the dispatcher (:mod:`skingen.cli`). A module imports at its top only what an install without the ``ml``
extra has, so every ``--help`` works there; what needs the extra is imported in ``check``/``run``.
"""
