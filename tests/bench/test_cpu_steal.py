"""The ingest bench's CPU steal figure, from /proc/stat's cpu line (proc(5): user nice system idle
iowait irq softirq steal guest guest_nice, in jiffies)."""

from __future__ import annotations

from edp_tools.bench.ingest import cpu_times, steal_pct

# A cpu line this machine printed; by hand: steal is the 8th value, 2021; the total of the first
# eight is 1249924 + 39 + 205872 + 1339813 + 6678 + 0 + 26478 + 2021 = 2830825.
LINE = "cpu  1249924 39 205872 1339813 6678 0 26478 2021 0 0\ncpu0 624962 20 102936 0 0 0 0 0 0 0\n"


def test_steal_and_total_from_the_cpu_line() -> None:
    assert cpu_times(LINE) == (2021, 2830825)


def test_share_stolen_between_two_readings() -> None:
    # 100 jiffies stolen out of 10,000 elapsed: 1 %.
    assert steal_pct((2021, 2830825), (2121, 2840825)) == 1.0
    assert steal_pct((5, 100), (5, 100)) == 0.0  # no time passed: nothing to divide


def test_this_machine_counts_forward() -> None:
    before = cpu_times()
    after = cpu_times()
    assert after[0] >= before[0] and after[1] >= before[1]
    assert 0.0 <= steal_pct(before, after) <= 100.0
