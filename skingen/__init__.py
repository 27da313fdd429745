"""SkinGEN pipeline: VLM diagnosis → prompts → Stable Diffusion reference images → stimulus bundle.

Importing this package (and :mod:`formats.bundle`) must stay torch-free: the study server reads
bundles without the ML stack. Modules that need torch import it themselves.
"""
