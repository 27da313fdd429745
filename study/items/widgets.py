"""Streamlit pieces several item kinds draw with (imported by their widget methods only, so nothing else of
the study loads Streamlit)."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from study.schema import Scale


def known_choice(key: str, options: list) -> list:
    """``options``, after dropping a widget state that is none of them. Only a crafted client sends one (the
    engine refused it); Streamlit could not draw the widget with it, so it starts blank again instead."""
    if key in st.session_state and st.session_state[key] not in (*options, None):
        del st.session_state[key]
    return options


def scale_radio(label: str, scale: Scale, key: str, help: str = "") -> None:
    """A horizontal 1..n rating row with the anchor labels under their points; nothing preselected."""
    points = range(1, scale.points + 1)
    st.radio(
        label,
        options=known_choice(key, list(points)),
        index=None,
        horizontal=True,
        captions=[scale.anchors.get(point, "") for point in points],
        key=key,
        help=help or None,
    )


def choice_radio(label: str, labels: Mapping[int, str], key: str, help: str, *, horizontal: bool) -> None:
    """One of coded options shown by their labels; nothing preselected."""
    st.radio(
        label,
        options=known_choice(key, list(labels)),
        format_func=labels.__getitem__,
        index=None,
        horizontal=horizontal,
        key=key,
        help=help or None,
    )
