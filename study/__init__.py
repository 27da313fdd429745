"""The study: protocol file, allocation, participant flow engine, simulation bots, export, Streamlit app.

Nothing here imports torch: a study server needs only the ``study`` extra.
"""
