"""The bottom layer: the formats every side reads and writes, and nothing else.

The pipeline (``skingen``), the study server (``study``) and the statistics (``analysis``) never import each
other; what they share lives here, once: the stimulus bundle's manifest (:mod:`formats.bundle`), the export
contract (:mod:`formats.contract`), the job wire format between the app and the model workers
(:mod:`formats.jobs`), the skin-condition taxonomy's ids (:mod:`formats.taxonomy`), the analysis plan's
shared definitions (:mod:`formats.planning`) and all-or-nothing file output (:mod:`formats.atomic`). Imports
here are the standard library, numpy/scipy/pydantic/PIL/yaml — never torch, never a database.
"""
