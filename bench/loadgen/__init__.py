"""Protocol-level load generator for the participant app: N simulated participants, no browser.

Each simulated participant speaks Streamlit's websocket protocol the way the browser does
(:mod:`bench.loadgen.client`): it asks for a script run, reads the page from the deltas, waits a think time,
then submits the page the way a browser submits an ``st.form``, and downloads the page's images; it goes on
until the completion page (:mod:`bench.loadgen.participants`). Latency is click → ``script_finished`` of the
run that shows the next page. After a run, every simulated participant's answers are checked in the database
(:mod:`bench.loadgen.verify`: the steps come from the study engine's own ``path_of``). The table
(:mod:`bench.loadgen.tables`) also gives the server's CPU time per submit (from ``/proc``) and the latency of
submits that lead to a case page. Servers and workers are started by :mod:`bench.servers`, the launcher the
end-to-end tests use too.

The client is importable (tests/test_deployment.py, bench/bench_deployment.py): a :class:`Plan` makes a
participant reload, move to another replica (nginx's sticky cookie), or come back after a dropped
connection or a "not saved" page, checking that it resumes at the right step. A :class:`SimulatedExplorer`
(:mod:`bench.loadgen.explorers`) uses the explorer (``/?area=explore``) the same way; bench/bench_explorer.py
runs explorers beside the participants.

Usage (from the repository root; starts its own servers on fresh SQLite files, prints a markdown table)::

    python -m bench.loadgen --participants 1 10 50 --servers tuned default --think 1 5

    python -m bench.loadgen --url http://127.0.0.1:8501 --participants 5   # an already running server

    python -m bench.loadgen --participants 1 50 --servers tuned --checkout before=/tmp/before  # side by side

    # a few-percent change: both servers up at once, six turns each, the CPU ratio block by block
    python -m bench.loadgen --participants 10 --think 0.1 0.3 --servers tuned --checkout before=/tmp/before \
        --blocks 6
"""

from bench.loadgen.cli import main
from bench.loadgen.client import Page, StreamlitClient, Widget, answer
from bench.loadgen.explorers import (
    EXPLORE_QUERY,
    MODEL_WAIT_S,
    UPLOADER,
    ExplorerOutcome,
    SimulatedExplorer,
    explorer_photo,
    explorers,
)
from bench.loadgen.participants import Outcome, Plan, SimulatedParticipant, crowd, participant, warm_up
from bench.loadgen.tables import Row, markdown, paired, percentile, table
from bench.loadgen.verify import verify

__all__ = [
    "EXPLORE_QUERY",
    "MODEL_WAIT_S",
    "UPLOADER",
    "ExplorerOutcome",
    "Outcome",
    "Page",
    "Plan",
    "Row",
    "SimulatedExplorer",
    "SimulatedParticipant",
    "StreamlitClient",
    "Widget",
    "answer",
    "crowd",
    "explorer_photo",
    "explorers",
    "main",
    "markdown",
    "paired",
    "participant",
    "percentile",
    "table",
    "verify",
    "warm_up",
]
