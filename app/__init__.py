"""The participant-facing Streamlit app: it only renders steps and submits answers.

Allocation, validation, order and storage all belong to :class:`study.engine.StudyEngine`; the app asks the
engine where the participant stands (``position``) on every rerun and hands each page's answers to
``submit``. ``main.py`` is the entrypoint and only routes; each module in ``pages/`` renders one step kind.
"""
