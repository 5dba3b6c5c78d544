#!/usr/bin/env python3
"""Unit tests of the bench scripts' comparison (check.py), table
(report.py) and targets (goals.py), on the FABRICATED result files in tests/bench/testdata/
(invented numbers, marked as such, never recorded results) and variants of
them made in a temporary directory. Prints PASS/FAIL per test and
"N passed, N failed" (tests/lib/suite.sh run_cmocka reads it)."""

import contextlib
import copy
import io
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check  # noqa: E402
import goals  # noqa: E402
import report  # noqa: E402

OLD = os.path.join(HERE, "testdata", "FABRICATED-old.json")
NEW = os.path.join(HERE, "testdata", "FABRICATED-new.json")


def load(p):
    with open(p) as f:
        return json.load(f)


def run(args):
    """check.main(args) -> (exit status, stdout + stderr)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = check.main(args)
    return rc, buf.getvalue()


def write(d, name, res):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        json.dump(res, f)
    return p


def variant(rid, target, value):
    res = load(NEW)
    res["values"].setdefault(rid, {})[target] = value
    return res


def test_within_threshold_passes():
    # new: -14 % create rate, +14 % latency, +10 % tar time, a probe -75 %.
    rc, out = run([OLD, NEW])
    assert rc == 0, out
    assert "no regression" in out, out


def test_rate_drop_over_threshold_fails():
    with tempfile.TemporaryDirectory() as d:
        p = write(d, "new.json", variant("small1.create", "leader", 840.0))
        rc, out = run([OLD, p])
        assert rc == 1, out
        assert "small1.create" in out and "REGRESSION" in out, out


def test_time_rise_over_threshold_fails():
    with tempfile.TemporaryDirectory() as d:
        p = write(d, "new.json", variant("tar.x", "leader", 11.6))
        rc, out = run([OLD, p])
        assert rc == 1, out


def test_latency_rise_over_threshold_fails():
    with tempfile.TemporaryDirectory() as d:
        p = write(d, "new.json", variant("failover.p50", "cluster", 346.0))
        assert run([OLD, p])[0] == 1


def test_lock_latency_rise_over_threshold_fails():
    # The lock rows (tests/locks/latency.py) are compared like any row.
    with tempfile.TemporaryDirectory() as d:
        p = write(d, "new.json", variant("locks.flock_lock.leader.p50",
                                         "cluster", 2.4))
        rc, out = run([OLD, p])
        assert rc == 1 and "locks.flock_lock.leader.p50" in out, out
        p = write(d, "new2.json", variant("locks.handoff_flock.p99",
                                          "cluster", None))
        rc, out = run([OLD, p])
        assert rc == 1 and "no figure now" in out, out


def test_lock_rows_in_the_raftfs_alone_table():
    t = report.table(load(NEW))
    alone = t[t.index("| raftfs alone |"):]
    assert "| lock: flock LOCK_EX, leader's mount, p50 | ms | 2.20 |" in \
        alone, alone
    assert "| lock hand-off leader → follower: flock LOCK_UN → blocked " \
        "LOCK_EX, p50 |" not in alone, alone  # no figure: no row
    assert "| same, p99 | ms | 90.0 |" in alone, alone


def test_improvement_passes():
    with tempfile.TemporaryDirectory() as d:
        p = write(d, "new.json", variant("seq.write", "leader", 900.0))
        assert run([OLD, p])[0] == 0


def test_lost_figure_fails():
    with tempfile.TemporaryDirectory() as d:
        p = write(d, "new.json", variant("rss.max", "cluster", None))
        rc, out = run([OLD, p])
        assert rc == 1 and "no figure now" in out, out


def test_info_rows_never_fail():
    with tempfile.TemporaryDirectory() as d:
        p = write(d, "new.json", variant("disk.fdatasync", "cluster", 1.0))
        assert run([OLD, p])[0] == 0


def test_threshold_option():
    rc, _ = run([OLD, NEW, "--threshold", "10"])
    assert rc == 1


def test_directory_picks_latest_of_same_machine_and_mode():
    with tempfile.TemporaryDirectory() as d:
        write(d, "a.json", load(OLD))
        bad = variant("small1.create", "leader", 100.0)
        bad["started"] = "2000-01-03T00:00:00+00:00"
        bad["mode"] = "quick"  # newest file of another mode, then ignored?
        write(d, "b.json", load(NEW))
        # The newest run decides machine and mode: here the quick one, and
        # it has no predecessor of its mode, so nothing is compared.
        write(d, "c.json", bad)
        rc, out = run([d])
        assert rc == 0 and "nothing to compare" in out, out
        os.unlink(os.path.join(d, "c.json"))
        other = copy.deepcopy(bad)
        other["mode"] = "default"
        other["machine"] = "another-machine"
        write(d, "c.json", other)
        rc, out = run([d])
        assert rc == 0 and "nothing to compare" in out, out
        other["machine"] = load(OLD)["machine"]
        write(d, "c.json", other)
        rc, out = run([d])  # b -> c: the create rate fell to 100
        assert rc == 1 and "b.json -> c.json" in out, out


def test_fewer_than_two_runs():
    with tempfile.TemporaryDirectory() as d:
        assert run([os.path.join(d, "none")])[0] == 0
        assert run([d])[0] == 0
        write(d, "a.json", load(OLD))
        rc, out = run([d])
        assert rc == 0 and "nothing to compare" in out, out


def test_bad_files_are_usage_errors():
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "x.json")
        with open(p, "w") as f:
            f.write("{not json")
        assert run([OLD, p])[0] == 2
        q = write(d, "y.json", {"schema": 2, "values": {}, "started": "x"})
        assert run([OLD, q])[0] == 2
        r = write(d, "z.json", variant("tar.x", "leader", "fast"))
        assert run([OLD, r])[0] == 2
        assert run([OLD])[0] == 2  # one file, not a directory


def test_table_ratios_and_notes():
    res = load(NEW)
    res["notes"] = {"small1.create": {"leader": "800 of 10,000 in the cap"}}
    t = report.table(res)
    line = next(x for x in t.splitlines() if x.startswith(
        "| create 4 KiB files, 1 worker"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    # workload, unit, a, b, c, d, e, c/a, c/b
    assert cells[2] == "5,000" and cells[3] == "—", cells
    assert cells[4] == "860 [1]" and cells[7] == "0.17", cells
    assert cells[8] == "—", cells
    assert "[1] (c) raftfs leader, create 4 KiB files, 1 worker: 800 of" in t
    assert "| consensus, 128 proposers | commits/s | 40,000 |" in t, t


def test_docs_section_replaced_in_place():
    with tempfile.TemporaryDirectory() as d:
        docs = os.path.join(d, "B.md")
        with open(docs, "w") as f:
            f.write("# B\n\nbefore\n")
        report.update_docs(docs, report.BEGIN_MARK + "\none\n" +
                           report.END_MARK + "\n")
        report.update_docs(docs, report.BEGIN_MARK + "\ntwo\n" +
                           report.END_MARK + "\n")
        with open(docs) as f:
            text = f.read()
        assert text.count(report.BEGIN_MARK) == 1, text
        assert "two" in text and "one" not in text and "before" in text


def verdicts(res, rid, col):
    return [c for c in goals.evaluate(res) if c["rid"] == rid and
            c["col"] == col]


def test_goal_met_and_missed():
    res = load(NEW)
    res["values"]["tar.x"] = {"leader": 80.0}
    hard, target = verdicts(res, "tar.x", "leader")
    assert hard["kind"] == "hard" and hard["verdict"] == "met", hard
    assert target["needed"] == 15 and target["verdict"] == "MISS", target
    res["values"]["tar.x"]["leader"] = 90.0
    assert verdicts(res, "tar.x", "leader")[0]["verdict"] == "MISS"


def test_goal_without_a_figure_is_a_miss():
    # A row that hit its cap proves nothing: a MISS, never "nothing".
    res = load(NEW)
    res["values"]["seq.write"] = {"leader": None}
    res["notes"] = {"seq.write": {"leader": "did not finish within the "
                                            "40 s cap"}}
    c = verdicts(res, "seq.write", "leader")[0]
    assert c["verdict"] == "MISS" and "40 s cap" in c["why"], c
    t = report.goals_table(res)
    assert "MISS: not measured: did not finish within the 40 s cap" in t, t


def test_goal_not_run_by_the_plan():
    res = load(NEW)
    res["values"]["tar.x"] = {"leader": 50.0, "follower": None}
    res["notes"] = {"tar.x": {"follower": goals.NOT_RUN + " (budget)"}}
    c = verdicts(res, "tar.x", "follower")[0]
    assert c["verdict"] == "not run", c
    met, miss, hard, not_run = goals.summary(goals.evaluate(res))
    assert not_run >= 1 and met >= 1, (met, miss, hard, not_run)


def test_goal_relative_to_other_figures():
    res = load(NEW)
    v = res["values"]
    v["disk.fdatasync"] = {"cluster": 4000.0}
    v["consensus.128.rate"] = {"cluster": 39000.0}
    assert verdicts(res, "consensus.128.rate", "cluster")[0]["verdict"] \
        == "MISS"
    v["consensus.128.rate"]["cluster"] = 41000.0
    c = verdicts(res, "consensus.128.rate", "cluster")[0]
    assert c["verdict"] == "met" and c["needed"] == 40000.0, c
    del v["disk.fdatasync"]
    c = verdicts(res, "consensus.128.rate", "cluster")[0]
    assert c["verdict"] == "MISS" and "reference" in c["why"], c


def test_goal_partial_rss_is_a_miss():
    res = load(NEW)
    res["values"]["rss.max"] = {"cluster": 50.0}
    res["notes"] = {"rss.max": {"cluster": "55,235 files of 200,000 in the "
                                           "54 s cap; node 1 46 MB"}}
    c = verdicts(res, "rss.max", "cluster")[0]
    assert c["verdict"] == "MISS" and "all its work" in c["why"], c
    res["notes"] = {}
    assert verdicts(res, "rss.max", "cluster")[0]["verdict"] == "met"


def main():
    tests = [(n, f) for n, f in sorted(globals().items())
             if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except AssertionError as e:
            failed += 1
            print(f"FAIL {name}: {e}")
            continue
        passed += 1
        print(f"PASS {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
