"""`undo` puts every file back exactly, and a run that cannot go on changes nothing — end to end.

Every scenario runs the real bootstrap.py with a real interpreter, in the laptop sandbox of the test bed
(tests/testbed): real venvs, real pip, the real HTTPS index and the real intercepting proxy.
"""
import shutil

import pytest

from bundle_helpers import bootstrap, changes, copy_bundle, expected_pins, installed_version, out
from tree_snapshot import SCRIPT as SNAPSHOT_SCRIPT, tree
from testbed import by_version, make_venv, pythons

pytestmark = pytest.mark.e2e

SUPPORTED = pythons(min=(3, 8))
PAIR = [i for i in SUPPORTED if i.version in ((3, 9), (3, 12))]


def snapshot(*folders):
    return tree(*folders, modes=True)


# --- undo ------------------------------------------------------------------------------------------

EXTERNALLY_MANAGED_UNDO = """set -e
lib="$1"; upper="$2"; work="$3"; shift 3
bin="$1"; bupper="$2"; bwork="$3"; shift 3
site="$1"; snap="$2"; dump="$3"; python="$4"; boot="$5"; shift 5
mount -t overlay overlay -o "lowerdir=$lib,upperdir=$upper,workdir=$work" "$lib"
mount -t overlay overlay -o "lowerdir=$bin,upperdir=$bupper,workdir=$bwork" "$bin"
: > "$lib/EXTERNALLY-MANAGED"
set +e
"$python" -I -S -B "$snap" --modes "$dump/before.json" "$site" "$bin" || exit 90
echo "@@ install"
"$python" "$boot" --offline --break-system-packages
echo "@@ install exit $?"
"$python" "$boot" undo
echo "@@ undo exit $?"
"$python" -I -S -B "$snap" --modes "$dump/after.json" "$site" "$bin" || exit 91
echo "@@ snapshot before"; cat "$dump/before.json"; echo
echo "@@ snapshot after"; cat "$dump/after.json"; echo
"""


def test_undo_after_break_system_packages_restores_the_interpreter_exactly(sandbox, tmp_path):
    """The interpreter itself (not a venv): its lib/ and bin/ are overlaid (writes land in upper dirs, and
    only within the one sandbox run), lib/ holds a PEP 668 marker. Install with --break-system-packages,
    undo, and site-packages and bin/ are what they were."""
    import json
    import re
    import subprocess
    interp = by_version((3, 12))
    paths = json.loads(subprocess.check_output(
        [str(interp.path), "-c", "import json,sysconfig; print(json.dumps(sysconfig.get_paths()))"],
        universal_newlines=True, env={"PATH": "/usr/bin:/bin"}))
    stdlib, site, bin_dir = paths["stdlib"], paths["purelib"], paths["scripts"]
    assert site.startswith(stdlib + "/"), (site, stdlib)        # the overlay of lib/ covers site-packages
    dirs = {}
    for name in ("upper", "work", "bin-upper", "bin-work", "dump"):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
    snap = SNAPSHOT_SCRIPT
    sb = sandbox(offline=True)                                   # a fresh HOME: the journal is this test's own
    bundle = copy_bundle(tmp_path / "bundle")
    result = sb.run(["sh", "-c", EXTERNALLY_MANAGED_UNDO, "sh", stdlib, dirs["upper"], dirs["work"],
                     bin_dir, dirs["bin-upper"], dirs["bin-work"], site, snap, dirs["dump"], interp.path,
                     bundle / "bootstrap.py"], cwd=str(bundle), timeout=300)
    print(result.stdout, result.stderr)
    assert result.returncode == 0, out(result)
    runs = result.stdout.split("@@ snapshot before")[0]
    install = re.search(r"^@@ install exit (\d+)$", result.stdout, re.M)
    undo = re.search(r"^@@ undo exit (\d+)$", result.stdout, re.M)
    assert install and undo, out(result)
    assert install.group(1) == "0", runs
    assert undo.group(1) == "0", runs
    before = json.loads((dirs["dump"] / "before.json").read_text())
    after = json.loads((dirs["dump"] / "after.json").read_text())
    assert any("/pip-" in p and p.endswith(".dist-info") for p in before), "no pip in {} to begin with".format(site)
    assert after == before, changes(before, after) + "\n" + runs


@pytest.mark.parametrize("interp", PAIR, ids=str)
def test_undo_restores_a_pip_script_symlink_that_the_old_record_does_not_list(interp, sandbox, tmp_path):
    """pyenv's layout: bin/pip is a symlink to pip3, and the old pip's RECORD does not list bin/pip."""
    sb = sandbox(offline=True)
    venv = tmp_path / "venv"
    python = make_venv(interp, venv, with_pip=True)
    (venv / "bin" / "pip").unlink()
    (venv / "bin" / "pip").symlink_to("pip3")
    record = next(venv.glob("lib/python*/site-packages/pip-*.dist-info/RECORD"))
    lines = record.read_text().splitlines(True)
    kept = [l for l in lines if not l.startswith("../../../bin/pip,")]
    assert len(kept) == len(lines) - 1, "the old RECORD lists no bin/pip line to remove"
    record.write_text("".join(kept))
    original = snapshot(venv, sb.home)
    bundle = copy_bundle(tmp_path / "bundle")

    installed = bootstrap(sb, python, bundle, "--offline")
    assert installed.returncode == 0, out(installed)
    assert installed_version(sb, python, "pip") == expected_pins(interp.version)["pip"]

    undone = bootstrap(sb, python, bundle, "undo")
    assert undone.returncode == 0, out(undone)
    after = snapshot(venv, sb.home)
    assert after == original, changes(original, after) + "\n" + out(undone)
    assert (venv / "bin" / "pip").is_symlink() and (venv / "bin" / "pip").resolve() == (venv / "bin" / "pip3").resolve()


def test_a_venv_recreated_at_the_same_path_gets_its_own_pip_back_on_undo(sandbox, tmp_path):
    interp = by_version((3, 12))
    sb = sandbox(offline=True)
    venv = tmp_path / "venv"
    bundle = copy_bundle(tmp_path / "bundle")
    python = make_venv(interp, venv, with_pip=False)
    first = bootstrap(sb, python, bundle, "--offline")
    assert first.returncode == 0, out(first)

    shutil.rmtree(str(venv))                                     # the user starts over, same folder
    python = make_venv(interp, venv, with_pip=True)
    bundled = installed_version(sb, python, "pip")
    pinned = expected_pins(interp.version)["pip"]
    assert bundled not in ("absent", pinned), bundled
    original = snapshot(venv)

    second = bootstrap(sb, python, bundle, "--offline")
    assert second.returncode == 0, out(second)
    assert installed_version(sb, python, "pip") == pinned

    undone = bootstrap(sb, python, bundle, "undo")
    assert undone.returncode == 0, out(undone)
    after = snapshot(venv)
    assert after == original, changes(original, after) + "\n" + out(undone)
    version = sb.run([str(python), "-m", "pip", "--version", "--disable-pip-version-check"])
    assert version.returncode == 0, out(version)
    assert version.stdout.startswith("pip {} ".format(bundled)), out(version)


# --- bad input and failures: one sentence, the right exit code, nothing changed -----------------

def refused_without_change(sb, interp, tmp_path, code, words, *args, bundle=None, **kw):
    """Run bootstrap.py on a bare venv of interp (with the full bundle unless one is given): it must exit
    with code, say every one of words, and leave the venv and HOME exactly as they were."""
    venv = tmp_path / "venv"
    python = make_venv(interp, venv, with_pip=False)
    bundle = bundle or copy_bundle(tmp_path / "bundle")
    before = snapshot(venv, sb.home)
    result = bootstrap(sb, python, bundle, *args, **kw)
    assert result.returncode == code, out(result)
    for word in words:
        assert word in result.stdout, out(result)
    after = snapshot(venv, sb.home)
    assert after == before, changes(before, after)
    assert installed_version(sb, python, "pip") == "absent"


def test_offline_without_the_certifi_wheel_is_bad_input_and_changes_nothing(sandbox, cas, tmp_path):
    """On Python < 3.10 the trust step writes a bundle of certifi's roots + the CA: offline, without the
    certifi wheel, that bundle cannot be made, which must be said before anything is installed."""
    bundle = copy_bundle(tmp_path / "bundle")
    certifi = list((bundle / "wheels").glob("certifi-*.whl"))
    assert certifi
    for wheel in certifi:
        wheel.unlink()
    refused_without_change(sandbox(offline=True), by_version((3, 9)), tmp_path, 2, ["certifi", "--offline"],
                           "--offline", "--ca-file", cas.corp_pem, bundle=bundle)


def test_a_proxy_asking_for_a_login_stops_before_any_change_even_with_wheels(sandbox, index, make_proxy, tmp_path):
    sb = sandbox(corp_in_os_store=True, proxy=make_proxy(index, auth="alice:s3cret"))
    refused_without_change(sb, by_version((3, 12)), tmp_path, 1, ["407", "nothing was changed"])


@pytest.mark.parametrize("interp", list(reversed(PAIR)), ids=str)
def test_an_interception_ca_nobody_trusts_stops_before_any_change(interp, sandbox, proxy, tmp_path):
    """The proxy re-signs pypi.org with the corporate CA; neither the OS store nor certifi has it and no
    --ca-file is given: the run names who signed the certificate and how to trust it, and changes nothing."""
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    refused_without_change(sb, interp, tmp_path, 1, ["Example Corp Interception (test)", "--ca-file"])


def test_a_ca_file_that_does_not_verify_the_index_is_bad_input_and_changes_nothing(sandbox, proxy, cas, tmp_path):
    """IT handed out the wrong root (here: the public one, while the proxy re-signs with the corporate one):
    the run checks the planned trust against the index before it changes anything."""
    sb = sandbox(corp_in_os_store=False, proxy=proxy)
    refused_without_change(sb, by_version((3, 9)), tmp_path, 2,
                           ["Public Web PKI (test)", "do not verify pypi.org", "Example Corp Interception (test)"],
                           "--ca-file", cas.public_pem)
