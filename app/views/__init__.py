"""One module per step kind; each exposes ``page()`` and checks itself that it renders the current step.

(Not called ``pages/``: Streamlit would treat a ``pages/`` folder beside main.py as a v1 multipage app.)
"""
