"""The benchmark command (bench/run.py) runs end to end and measures what it says it measures.

Timing targets are not asserted here (a loaded CI machine would make them flaky); what is asserted is
what holds on any machine: the commands it times succeeded and did their job, the re-run starts no pip
process, the zip is within 5% of its wheels, and doctor is bounded with no network.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import testbed
from bundle_helpers import expected_pins

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def test_bench_measures_every_case_on_the_oldest_and_newest_python(tmp_path):
    found = testbed.pythons(min=(3, 8), max=(3, 13))
    chosen = sorted({testbed.need(found[0]), testbed.need(found[-1])})
    out = tmp_path / "bench.json"
    args = [sys.executable, str(ROOT / "bench" / "run.py"), "-n", "1", "--warmup", "0", "--json", str(out)]
    for interp in chosen:
        args += ["--python", str(interp)]
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout
    results = json.loads(out.read_text())
    assert sorted(results["pythons"]) == sorted(str(i) for i in chosen)
    for interp in chosen:
        entry = results["pythons"][str(interp)]
        assert "| {} |".format(interp) in proc.stdout
        assert entry["pip"] == expected_pins(interp.version)["pip"]
        assert entry["truststore"] == (interp.version >= (3, 10))
        assert entry["pip_conf_cert"] is True       # the company CA is known: the bundle, for every pip of the user
        assert entry["rss"]["first"]["children_kb"] > 10 * 1024      # pip ran as a child of the first run
        assert entry["rss"]["rerun"]["children_kb"] == 0             # ...and not at all on the re-run
        assert entry["rss"]["first"]["self_kb"] > 0
        assert "Successfully installed" in entry["output"]["ensurepip"]
        assert "Successfully installed pip-" in entry["output"]["by_hand"]
        assert "Nothing needed to change" in entry["output"]["rerun"]
        assert "Verdict:" in entry["output"]["doctor"]
        samples = entry["samples"]
        assert samples["doctor"][0]["s"] <= 10.0
        assert samples["rerun"][0]["s"] < samples["first"][0]["s"]
    size = results["size"]
    assert size["wheels"] == len(list((ROOT / "wheels").glob("*.whl")))
    assert size["wheel_bytes"] == sum(p.stat().st_size for p in (ROOT / "wheels").glob("*.whl"))
    assert size["zip_bytes"] <= 1.05 * size["wheel_bytes"]
