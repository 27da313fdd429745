"""The researcher dashboard: live enrollment and progress, downloads, the analysis report, the rater panel.

Every page starts with ``access.require("admin")``: the check runs on each run of each page, so a page
requested directly or a participant's or rater's session gets nothing.
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import UTC, tzinfo
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from app import access
from app.context import configured_engine
from app.dashboard_report import current_report, zip_with_report
from study.auth import AuthError
from study.export import export_files, export_frames
from study.labelled import WIDE, wide_table
from study.monitor import Monitor, rater_table, record_identifier_view
from study.path import step_order
from study.rating import RatingError, RatingPanel, rating_images


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
            st.error(access.message(exc))
            return
        st.rerun()


def _timezone() -> tzinfo:
    """The researcher's time zone, from their browser (``st.context.timezone``); UTC when it is unknown."""
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _local(stamps: pd.Series, tz: tzinfo) -> pd.Series:
    """UTC times (ISO text or datetimes) as ``YYYY-MM-DD HH:MM`` in ``tz``; empty stays empty."""
    times = pd.to_datetime(stamps.replace("", None), utc=True, format="ISO8601")
    return times.dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M").fillna("")


def _chart(figure: go.Figure, height: int = 320) -> None:
    figure.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10}, height=height)
    st.plotly_chart(figure, width="stretch")


def dashboard() -> None:
    access.require("admin")
    engine = configured_engine()
    protocol = engine.protocol
    st.title(protocol.study.title)
    monitor = Monitor.load(engine.db, engine.version_id, engine.loaded)
    status = monitor.status_counts().iloc[0]
    tz = _timezone()
    last = _local(pd.Series([monitor.last_activity()]), tz).iloc[0]
    st.caption(
        f"Study {protocol.study.id} v{protocol.study.version} · {protocol.design} design · "
        f"last activity {last or '—'} · times in {tz}"
    )
    columns = st.columns(8)
    for column, (label, key) in zip(
        columns,
        [
            ("Consented", "consented"),
            ("Declined", "declined"),
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

    by_day = monitor.enrollment_by_day(tz)
    if not by_day.empty:
        over_time = px.line(
            by_day,
            x="day",
            y=["enrolled", "completed"],
            markers=True,
            labels={"value": "participants (cumulative)", "variable": "", "day": f"day ({tz})"},
        )
        # whole days on the axis (plotly would tick hours within a short span); about ten ticks at most
        days = max(1, len(by_day) // 10) * 24 * 3600 * 1000
        over_time.update_xaxes(tickformat="%Y-%m-%d", dtick=days)
        _chart(over_time.update_layout(title="Enrollment over time"))

    left, right = st.columns(2)
    with left:
        funnel = monitor.funnel()
        if funnel["participants"].iloc[0]:
            funnel_figure = go.Figure(go.Funnel(y=funnel["label"], x=funnel["participants"]))
            rows = len(funnel)  # one readable bar per step, however long the path
            _chart(funnel_figure.update_layout(title="Completion funnel"), height=max(320, 60 + 24 * rows))
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
            bars = go.Figure(go.Bar(x=times["step"].map(monitor.label), y=times["median_s"], error_y=spread))
            _chart(bars.update_layout(title="Time per step (median, IQR), seconds"))

    _participants(monitor, tz)

    if protocol.rating is not None:
        st.subheader("Rater progress")
        raters = rater_table(engine.db, protocol.study.id)
        raters["last_activity"] = _local(raters["last_activity"], tz)
        if raters.empty:
            st.info("No raters yet: invite them on the Raters page (or `skingen-study raters add NAME`).")
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


SHOW_IDENTIFIERS_KEY = "skingen.show_identifiers"


def _participants(monitor: Monitor, tz: tzinfo) -> None:
    """The per-participant table; platform ids only when the researcher turns them on (each time logged)."""
    engine = configured_engine()
    st.subheader("Participants")
    identifiers = None
    if engine.protocol.url_parameters:
        shown = st.toggle(
            f"Show platform ids ({', '.join(engine.protocol.url_parameters)})",
            key=SHOW_IDENTIFIERS_KEY,
            on_change=_log_identifiers,
            args=("dashboard", SHOW_IDENTIFIERS_KEY),
            help="Off by default. Turning it on is recorded in the audit log (events.csv: identifiers_shown).",
        )
        if shown:
            with_ids = export_frames(engine.db, version_id=engine.version_id, include_identifiers=True)
            identifiers = with_ids["participants"]
    table = monitor.participant_table(identifiers)
    if table.empty:
        st.info("No participant has consented yet.")
        return
    table["last_activity"] = _local(table["last_activity"], tz)
    st.dataframe(
        table.rename(
            columns={
                "participant_id": "participant",
                "current_step": "current step",
                "last_activity": f"last activity ({tz})",
                "attention_failures": "attention checks failed",
            }
        ),
        hide_index=True,
    )


def _log_identifiers(where: str, key: str) -> None:
    """Widget callback: record turning identifiers on (not off) in the audit log."""
    if st.session_state.get(key):
        engine = configured_engine()
        record_identifier_view(engine.db, engine.version_id, where)


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


DOWNLOAD_IDENTIFIERS_KEY = "skingen.download_identifiers"
_TABLES = {
    "responses": "Responses (long)",
    WIDE: "Responses (wide)",
    "participants": "Participants",
    "ratings": "Expert ratings",
    "codebook": "Codebook",
    "events": "Audit log",
    "allocation": "Allocation table",
    "study": "Study (protocol version)",
    "instruments": "Instruments (scoring rules)",
    "hypotheses": "Preregistered hypotheses",
}


def downloads() -> None:
    access.require("admin")
    engine = configured_engine()
    st.title("Downloads")
    identifiers = st.checkbox(
        "Include identifiers (recorded URL parameters such as PROLIFIC_PID)",
        key=DOWNLOAD_IDENTIFIERS_KEY,
        on_change=_log_identifiers,
        args=("downloads", DOWNLOAD_IDENTIFIERS_KEY),
        help="Off by default: exports are de-identified. Identifiable data needs a legal basis to download. "
        "Ticking it is recorded in the audit log.",
    )
    if identifiers:
        st.warning("These files identify participants. Store them as your ethics approval requires.")
    frames = export_frames(engine.db, version_id=engine.version_id, include_identifiers=identifiers)
    wide = wide_table(frames, step_order(engine.loaded))
    files = export_files(frames, wide)
    st.download_button(
        f"Download all (zip: the {len(files)} export files — the CSVs, codebook, SPSS and Stata — and the "
        "analysis report)",
        lambda: zip_with_report(engine, files),  # built on the click: the report can take a while
        file_name=f"{engine.protocol.study.id}-export.zip",
        mime="application/zip",
        type="primary",
        key="zip",
    )
    tables = {**frames, WIDE: wide.frame}
    for name, label in _TABLES.items():
        frame = tables.get(name)
        if frame is None:
            continue
        csv, parquet = st.columns(2)
        csv.download_button(
            f"{label} — CSV ({len(frame)} rows)",
            files[f"{name}.csv"],
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
    sav, dta = st.columns(2)
    for column, suffix, program, mime in (
        (sav, ".sav", "SPSS", "application/x-spss-sav"),
        (dta, ".dta", "Stata", "application/x-stata-dta"),
    ):
        column.download_button(
            f"Responses (wide) — {program} ({suffix}, value labels)",
            files[WIDE + suffix],
            file_name=WIDE + suffix,
            mime=mime,
            key=f"{program}:{WIDE}",
        )
    st.caption("Column meanings: docs/export-format.md. The codebook is generated from the protocol.")


def analysis() -> None:
    access.require("admin")
    engine = configured_engine()
    st.title("Analysis report")
    st.write(
        "Runs `skingen-analysis report` on the current data, with its defaults and the registered protocol "
        "(exclusions from the protocol applied): the numbers are the report's."
    )
    if not st.button("Run the analysis", type="primary"):
        return
    with st.spinner("Computing…"):
        built = current_report(engine)  # the Downloads zip's report too: computed once per state of the data
    if built.report is None or built.data is None:
        st.error(built.problem)
        return
    from analysis.document import hypotheses_table, instruments_table, ratings_table, summary_table

    report, data = built.report, built.data
    result, figures = report.analysis, report.figures
    protocol = engine.protocol
    analysed = 0 if result.scores is None else result.scores["participant_id"].nunique()
    st.caption(
        f"Study {protocol.study.id} v{protocol.study.version} · {data.design} design · "
        f"{analysed} participants analysed"
    )
    with st.expander("Settings (those of `skingen-analysis report`, as in results.json)"):
        st.json(result.results["config"])
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
        report.html().encode("utf-8"),
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
    table = rater_table(engine.db, engine.protocol.study.id)
    table["last_activity"] = _local(table["last_activity"], _timezone())
    st.dataframe(table, hide_index=True)
    _invite_form(RatingPanel(engine.db, engine.loaded), table)


def _invite_form(panel: RatingPanel, table: pd.DataFrame) -> None:
    """Invite a rater: the same call as ``skingen-study raters add`` (:meth:`RatingPanel.invite`)."""
    st.subheader("Invite a rater")
    with st.form("invite-rater", enter_to_submit=False):
        name = st.text_input("Name (the rater signs in with it; capitalisation does not matter)")
        email = st.text_input("E-mail (optional, for your records; never exported)")
        replaces = st.selectbox(
            "Takes over the panel slot and unrated images of",
            [None, *table["rater_id"]],
            format_func=lambda r: "nobody (a new panel slot)" if r is None else r,
        )
        base_url = st.text_input("Server address in the link", value=_server_address())
        submitted = st.form_submit_button("Create invite link", type="primary")
    if not submitted:
        return
    replace = int(replaces.removeprefix("R")) if replaces else None
    try:
        invitation = panel.invite(name, base_url, email.strip() or None, replace)
    except RatingError as exc:
        st.error(access.message(exc))
        return
    st.success(f"Added {invitation.describe()}. Sign-in name: {invitation.name}.")
    st.write("Send this one-time link to the rater (shown only now; it sets their password):")
    st.code(invitation.link, language=None)


def _server_address() -> str:
    """This server's address as the researcher's browser reaches it (the page's URL without the page)."""
    url = urlparse(st.context.url or "")
    if not url.scheme or not url.netloc:
        return "http://127.0.0.1:8501"
    path = url.path.rstrip("/").removesuffix("/raters")
    return f"{url.scheme}://{url.netloc}{path}"


def sign_out() -> None:
    access.require("admin")
    access.sign_out()
    st.success("Signed out.")
