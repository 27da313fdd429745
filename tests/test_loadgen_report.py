"""bench/loadgen's report: CPU per submit compared block by block between servers (``--blocks``)."""

from __future__ import annotations

import pytest

from bench.loadgen import Row, main, paired


def test_paired_ratios_compare_each_block_with_the_first_servers_same_block():
    first = Row("tuned", 10, [], block_cpu_ms=[10.0, 12.0, 11.0])
    other = Row("before", 10, [], block_cpu_ms=[11.0, 12.0, 13.2])
    [line] = paired([first, other])
    assert line == (
        "CPU per submit, before / tuned at 10 participants, per block: 1.10 1.00 1.20; median 1.10"
    )


def test_a_single_block_or_a_single_server_gives_no_ratio_line():
    assert paired([Row("tuned", 10, [], block_cpu_ms=[10.0])]) == []
    assert paired([Row("tuned", 10, [], block_cpu_ms=[10.0]), Row("b", 10, [], block_cpu_ms=[9.0])]) == []


def test_blocks_need_servers_loadgen_starts_itself(capsys):
    with pytest.raises(SystemExit):
        main(["--url", "http://127.0.0.1:9", "--blocks", "3"])
    assert "--blocks" in capsys.readouterr().err
