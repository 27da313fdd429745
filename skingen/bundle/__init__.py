"""Stimulus bundles: the fixed set of cases and reference images a study shows."""
