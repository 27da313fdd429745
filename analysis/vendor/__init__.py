"""Vendored third-party files (README.md says what, from where and why); no code."""
