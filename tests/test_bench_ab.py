"""tools/ab.py, the in-process A/B harness, comparing HEAD with HEAD at its
tiny sizes: two builds really loaded side by side, every workload timed on
both, the ratios paired round by round. Skips outside a git checkout (an
sdist or installed-wheel run)."""
import json
import os
import shutil
import statistics
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AB = os.path.join(ROOT, "tools", "ab.py")


def in_git_checkout():
    if not (os.path.isfile(AB) and shutil.which("git")):
        return False
    done = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(not in_git_checkout(), reason="needs tools/ab.py in a git checkout")
def test_ab_compares_two_distinct_builds_of_head():
    done = subprocess.run([sys.executable, AB, "HEAD", "HEAD", "--tiny", "--json"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    loaded = report["loaded"]
    assert loaded["distinct_modules"] and loaded["distinct_files"]
    assert loaded["both_mapped"] in (True, None)  # None: no /proc/self/maps to look in
    assert "cgrad_ab_base" in loaded["files"]["base"] and "cgrad_ab_other" in loaded["files"]["other"]
    summary = report["summary"]
    assert list(summary) == ["a + b, ns/op", "a * b, ns/op", "a.tanh(), ns/op", "a.data, ns/op", "a.grad, ns/op",
                             "softmax-NLL N=200 build, ms", "  its backward, ms", "moons step replayed, us"]
    # No bound on the ratios (the same build twice should give about 1, but at
    # these sizes one preemption on a shared machine moves a ratio 7x): the
    # ratio must be the median of the rounds' paired other/base ratios.
    for name, s in summary.items():
        times = report["times"][name]
        assert len(times["base"]) == len(times["other"]) == 3
        assert all(t > 0 for t in times["base"] + times["other"])
        assert s["base"] == statistics.median(times["base"]) and s["other"] == statistics.median(times["other"])
        assert s["ratio"] == statistics.median(o / b for b, o in zip(times["base"], times["other"]))
        assert s["ratio_q1"] <= s["ratio"] <= s["ratio_q3"]
