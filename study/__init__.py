"""The study: protocol file, allocation, the study engine, simulation bots, export, rating panel, deployment.

Nothing here imports torch: a study server needs only the ``study`` extra.
"""
