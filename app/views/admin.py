"""The researcher dashboard: live enrollment and progress, downloads, the analysis report, the rater panel.

Every page starts with ``access.require("admin")``: the check runs on each run of each page, so a page
requested directly or a participant's or rater's session gets nothing.
"""

from __future__ import annotations

import io
from collections import Counter

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import access
from app.context import configured_engine
from study.auth import AuthError
from study.export import export_frames
from study.monitor import Monitor, rater_table, wide_responses
from study.path import step_order
from study.rating import rating_images


def sign_in() -> None:
    st.title("Researcher sign-in")
    with st.form("admin-sign-in", enter_to_submit=True):
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            access.start_session(
                access.auth().sign_in_admin(
                    password, access.admin_password_hash(), source=access.client_source()
                )
            )
        except AuthError as exc:
            st.error(str(exc).capitalize())
            return
        st.rerun()


def _chart(figure: go.Figure) -> None:
    figure.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, height=320)
    st.plotly_chart(figure, width="stretch")


def dashboard() -> None:
    access.require("admin")
    engine = configured_engine()
    protocol = engine.protocol
    st.title(protocol.study.title)
    monitor = Monitor.load(engine.db, engine.version_id, engine.loaded)
    status = monitor.status_counts().iloc[0]
    st.caption(
        f"Study {protocol.study.id} v{protocol.study.version} · {protocol.design} design · "
        f"last activity {monitor.last_activity() or '—'}"
    )
    columns = st.columns(7)
    for column, (label, key) in zip(
        columns,
        [
            ("Consented", "consented"),
            ("Allocated", "allocated"),
            ("Completed", "completed"),
            ("Active", "active"),
            ("Dropped out", "dropped"),
            ("Withdrawn", "withdrawn"),
            ("Failed attention check", "failed_attention_check"),
        ],
        strict=True,
    ):
        column.metric(label, int(status[key]))

    st.subheader("Enrollment by arm and stratum")
    enrollment = monitor.enrollment()
    if enrollment.empty:
        st.info("Nobody has been allocated yet.")
    else:
        long = enrollment.melt(
            id_vars=["stratum", "arm"],
            value_vars=["allocated", "completed"],
            var_name="count",
            value_name="participants",
        )
        _chart(
            px.bar(
                long,
                x="arm",
                y="participants",
                color="count",
                barmode="group",
                facet_col="stratum" if enrollment["stratum"].ne("").any() else None,
                title="Allocated (allocation table) and completed",
            )
        )

    left, right = st.columns(2)
    with left:
        funnel = monitor.funnel()
        if funnel["participants"].iloc[0]:
            funnel_figure = go.Figure(go.Funnel(y=funnel["step"], x=funnel["participants"]))
            _chart(funnel_figure.update_layout(title="Completion funnel"))
        else:
            st.info("No participant has consented yet.")
    with right:
        times = monitor.step_times()
        if not times.empty:
            spread = {
                "type": "data",
                "symmetric": False,
                "array": times["q3_s"] - times["median_s"],
                "arrayminus": times["median_s"] - times["q1_s"],
            }
            bars = go.Figure(go.Bar(x=times["step"], y=times["median_s"], error_y=spread))
            _chart(bars.update_layout(title="Time per step (median, IQR), seconds"))

    if protocol.rating is not None:
        st.subheader("Rater progress")
        raters = rater_table(engine.db, protocol.study.id)
        if raters.empty:
            st.info("No raters yet: add them with `skingen-study raters add NAME`.")
        else:
            left, right = st.columns(2)
            with left:
                labels = {"value": "images", "variable": "", "rater_id": "rater"}
                per_rater = px.bar(
                    raters, x="rater_id", y=["rated", "assigned"], barmode="overlay", labels=labels
                )
                _chart(per_rater.update_layout(title="Images rated per rater"))
            with right:
                _chart(_raters_per_image(monitor, engine.loaded, protocol.rating.raters_per_image))
            st.dataframe(raters, hide_index=True)
    if st.button("Refresh"):
        st.rerun()


def _raters_per_image(monitor: Monitor, loaded, target: int) -> go.Figure:
    """How many images have 0, 1, … raters so far (every image needs ``target``)."""
    _, per_image = monitor.rater_progress()
    done = dict(zip(per_image["image_id"], per_image["raters"], strict=True))
    counts = Counter(done.get(image.image_id, 0) for image in rating_images(loaded))
    levels = list(range(max([target, *counts]) + 1))
    figure = go.Figure(
        go.Bar(
            x=[str(k) for k in levels],
            y=[counts.get(k, 0) for k in levels],
            marker_color=["#1d4f91" if k >= target else "#9db4d6" for k in levels],
        )
    )
    figure.update_layout(
        title=f"Images by number of raters so far (target {target})",
        xaxis_title="raters",
        yaxis_title="images",
        xaxis_type="category",
    )
    return figure


def downloads() -> None:
    access.require("admin")
    engine = configured_engine()
    st.title("Downloads")
    identifiers = st.checkbox(
        "Include identifiers (recorded URL parameters such as PROLIFIC_PID)",
        help="Off by default: exports are de-identified. Identifiable data needs a legal basis to download.",
    )
    if identifiers:
        st.warning("These files identify participants. Store them as your ethics approval requires.")
    frames = export_frames(engine.db, version_id=engine.version_id, include_identifiers=identifiers)
    frames["responses_wide"] = wide_responses(frames["responses"], step_order(engine.loaded))
    names = {
        "responses": "Responses (long)",
        "responses_wide": "Responses (wide)",
        "participants": "Participants",
        "ratings": "Expert ratings",
        "codebook": "Codebook",
        "events": "Audit log",
        "allocation": "Allocation table",
        "study": "Study (protocol version)",
        "instruments": "Instruments (scoring rules)",
        "hypotheses": "Preregistered hypotheses",
    }
    for name, label in names.items():
        frame = frames.get(name)
        if frame is None:
            continue
        csv, parquet = st.columns(2)
        csv.download_button(
            f"{label} — CSV ({len(frame)} rows)",
            frame.to_csv(index=False).encode("utf-8"),
            file_name=f"{name}.csv",
            mime="text/csv",
            key=f"csv:{name}",
        )
        buffer = io.BytesIO()
        frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object}).to_parquet(buffer)
        parquet.download_button(
            f"{label} — Parquet",
            buffer.getvalue(),
            file_name=f"{name}.parquet",
            mime="application/vnd.apache.parquet",
            key=f"parquet:{name}",
        )
    st.caption("Column meanings: docs/export-format.md. The codebook is generated from the protocol.")


def analysis() -> None:
    access.require("admin")
    engine = configured_engine()
    st.title("Analysis report")
    st.write("Runs `skingen-analysis report` on the current data (exclusions from the protocol applied).")
    if not st.button("Run the analysis", type="primary"):
        return
    try:
        from analysis.document import (
            document,
            hypotheses_table,
            instruments_table,
            ratings_table,
            summary_table,
        )
        from analysis.figures import build_figures
        from analysis.load import AnalysisInputError, from_export
        from analysis.pipeline import AnalysisConfig, run_analysis
        from analysis.render import render_html
    except ImportError:
        st.error("The analysis needs the `analysis` extra: `pip install 'skingen-study[analysis]'`.")
        return
    with st.spinner("Computing…"):
        try:  # the engine's own database and study, through the export contract (as Downloads)
            data = from_export(export_frames(engine.db, version_id=engine.version_id))
            result = run_analysis(data, AnalysisConfig(n_boot=200))
        except AnalysisInputError as exc:
            st.error(f"The analysis cannot run on these data yet: {exc}")
            return
        figures = build_figures(result, data.design, data.baseline, data.visual, data.conditions)
    protocol = engine.protocol
    analysed = 0 if result.scores is None else result.scores["participant_id"].nunique()
    st.caption(
        f"Study {protocol.study.id} v{protocol.study.version} · {data.design} design · "
        f"{analysed} participants analysed"
    )
    plan = result.results["preregistration"]
    st.subheader(f"Preregistration: {plan['status']}")
    for deviation in plan["deviations"]:
        st.warning(f"Deviation: {deviation}")
    if result.results["hypotheses"]:
        st.dataframe(hypotheses_table(result.results), hide_index=True)
    st.subheader("Comparisons per construct")
    st.dataframe(summary_table(result.results), hide_index=True)
    if result.results["instruments"]:
        st.subheader("Instruments")
        st.dataframe(instruments_table(result.results), hide_index=True)
    if result.results["ratings"]:
        st.subheader("Expert ratings")
        st.dataframe(ratings_table(result.results), hide_index=True)
    for name, figure in figures.items():
        st.plotly_chart(figure, width="stretch", key=f"figure:{name}")
    for warning in result.results["warnings"]:
        st.caption(f"Note: {warning}")
    st.download_button(
        "Download report.html",
        render_html(document(result.results), figures).encode("utf-8"),
        file_name="report.html",
        mime="text/html",
    )


def raters() -> None:
    access.require("admin")
    engine = configured_engine()
    st.title("Rating panel")
    if engine.protocol.rating is None:
        st.info("This protocol declares no rating task.")
        return
    st.dataframe(rater_table(engine.db, engine.protocol.study.id), hide_index=True)
    st.caption("Add raters with `skingen-study raters add NAME`; it prints their one-time sign-in link.")


def sign_out() -> None:
    access.require("admin")
    access.sign_out()
    st.success("Signed out.")
