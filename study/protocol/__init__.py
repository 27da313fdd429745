"""The study protocol, by concern: the root model (``model``), its sections (``sections``), included
instruments (``instrument_use``), cross-section checks (``checks``), YAML field paths and lines
(``yaml_lines``) and loading with the bundle (``loading``). The items of its questionnaires are
:mod:`study.items`, one module per kind."""
