#!/usr/bin/env python3
"""Benchmarks: trustfix's bootstrap.py against the tools people use today, side by side.

    python3 bench/run.py                      every CPython 3.8-3.13 found, 5 timed rounds each
    python3 bench/run.py --python 3.11 -n 3   one Python, 3 rounds
    python3 bench/run.py --json out.json      also write every sample as JSON

Everything runs in the test bed's offline laptop sandbox (Linux, root: `unshare -m -n`): no network
but loopback, /etc/pip.conf masked, an OS trust store holding the company root CA, an empty HOME and a
scrubbed environment per run. bootstrap.py runs from the zip `build.py zip` makes, unpacked, as a new
hire would run it. Per Python it measures, in interleaved rounds after one untimed warm-up round:

  ensurepip   `python -m ensurepip` on a bare venv (the venv's bundled pip only; no trust configured)
  by hand     `python -m pip install --upgrade --no-index --find-links wheels pip truststore` with
              the venv's own pip (truststore only on 3.10+, where it installs; without --upgrade pip
              keeps the venv's older pip: "Requirement already satisfied")
  first       `python bootstrap.py --offline` on a bare venv: pip (+ truststore), hashes checked,
              trust configured
  re-run      the same command again on the same venv and HOME (the idempotent path)
  doctor      `python bootstrap.py doctor` with no network
  peak RSS    of bootstrap.py's own process and of its pip child, in one extra round

and, once, the zip against the sum of the sizes of the wheels in it. Every timed command must succeed
(doctor: any verdict) or the benchmark stops: a number for a failed run would be meaningless.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

TARGETS = {"first_vs_ensurepip": 0.6, "rerun_vs_first": 0.10, "zip_vs_wheels": 1.05, "doctor_s": 10.0}
CASES = ("ensurepip", "by_hand", "first", "rerun", "doctor")

# Runs a script as __main__ and reports the peak RSS of this process and of its (waited-for) children.
RSS_WRAPPER = r"""
import json, resource, runpy, sys
out, sys.argv = sys.argv[1], sys.argv[2:]
code = 0
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
finally:
    with open(out, "w") as f:
        json.dump({"self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "code": code}, f)
sys.exit(code)
"""


# --------------------------------------------------------------------------------------------------
# Outside the sandbox: the bundle, the OS store, then this script again inside `unshare -m -n`
# --------------------------------------------------------------------------------------------------

def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = ", {:.0f} GiB RAM".format(kb / 2 ** 20)
    except (OSError, ValueError, IndexError):
        pass
    return "{}, {} cores{}, {} {}, load average {:.2f} at start".format(
        cpu, os.cpu_count(), mem, platform.system(), platform.release(), os.getloadavg()[0])


def build_bundle(work):
    """The zip IT hands out (build.py zip, with a company root CA), unpacked; and its size numbers."""
    import trustme
    corp = trustme.CA(organization_name="Example Corp Interception (bench)")
    corp_pem = work / "corp-root.pem"
    corp.cert_pem.write_to_path(str(corp_pem))
    zip_path = work / "trustfix.zip"
    subprocess.run([sys.executable, str(ROOT / "build.py"), "zip", "--ca", str(corp_pem), "-o", str(zip_path)],
                   check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, SOURCE_DATE_EPOCH="1767225600"))
    with zipfile.ZipFile(str(zip_path)) as z:
        wheels = [i for i in z.infolist() if i.filename.endswith(".whl")]
        z.extractall(str(work / "bundle"))
    wheel_bytes = sum(i.file_size for i in wheels)
    size = {"zip_bytes": zip_path.stat().st_size, "wheel_bytes": wheel_bytes, "wheels": len(wheels),
            "entries": len(z.infolist())}
    size["ratio"] = size["zip_bytes"] / wheel_bytes
    return work / "bundle" / "trustfix", corp_pem, size


def outside(args):
    import testbed
    problem = testbed.sandbox_problem()
    if problem:
        sys.exit("bench: the offline sandbox cannot be made here: " + problem)
    found = testbed.pythons(min=(3, 8), max=(3, 13))
    if args.python:
        found = [i for i in found if str(i) in args.python]
        missing = set(args.python) - {str(i) for i in found}
        if missing:
            sys.exit("bench: no CPython {} found (found: {})".format(
                ", ".join(sorted(missing)), ", ".join(str(i) for i in testbed.pythons())))
    if not found:
        sys.exit("bench: no CPython 3.8-3.13 found")
    work = Path(tempfile.mkdtemp(prefix="trustfix-bench-"))
    try:
        bundle, corp_pem, size = build_bundle(work)
        store = work / "os-store"
        testbed.write_store(store, [corp_pem.read_bytes()])        # IT put the company root in the OS store
        empty = work / "empty"
        empty.touch()
        config = {"bundle": str(bundle), "work": str(work / "runs"), "repeat": args.repeat, "tmpfs": args.tmpfs,
                  "warmup": args.warmup, "pythons": [[str(i), str(i.path)] for i in found]}
        (work / "config.json").write_text(json.dumps(config))
        env = testbed.scrubbed_env(home=work / "home")
        cmd = ["unshare", "-m", "-n", "--", "/bin/sh", "-c", testbed.MOUNTS, "sh", str(empty), str(store), "1", "",
               sys.executable, str(Path(__file__).resolve()), "--inside", str(work / "config.json")]
        started = time.monotonic()
        subprocess.run(cmd, env=env, check=True)
        results = json.loads((work / "runs" / "results.json").read_text())
        results.update(size=size, machine=machine(), date=datetime.date.today().isoformat(),
                       wall_s=round(time.monotonic() - started, 1), repeat=args.repeat,
                       warmup=args.warmup, tmpfs=args.tmpfs)
    finally:
        if not args.keep:
            shutil.rmtree(str(work), ignore_errors=True)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


# --------------------------------------------------------------------------------------------------
# Inside the sandbox: time the commands
# --------------------------------------------------------------------------------------------------

def timed(argv, env, rss_file=None):
    """(seconds, exit code, output, peak RSS in KiB, CPU seconds (user + system)) of one run's process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen([str(a) for a in argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    return seconds, proc.returncode, out.decode("utf-8", "replace"), usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def venv_python(venv):
    return Path(venv) / "bin" / "python"


class Runner:
    def __init__(self, config, version, interp):
        self.bundle = Path(config["bundle"])
        self.version, self.interp = version, interp
        self.base = Path(config["work"]) / version
        self.base.mkdir(parents=True)
        self.count = 0
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb"}
        if config["tmpfs"]:                      # temporary files in RAM, as /tmp is on Fedora, Arch, Debian 13
            env["TMPDIR"] = str(self.base / "tmp")
            os.mkdir(env["TMPDIR"])
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=1777", "tmpfs", env["TMPDIR"]], check=True)
        self.env0 = env
        self.bare = self.base / "template-bare"
        self.with_pip = self.base / "template-with-pip"
        for path, flags in ((self.bare, ["--without-pip"]), (self.with_pip, [])):
            subprocess.run([interp, "-m", "venv"] + flags + [str(path)], check=True, env=self.env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def fresh(self, template):
        """A new venv (a copy of a fresh one: venvs do not depend on their path) and a new, empty HOME."""
        self.count += 1
        run = self.base / "run-{}".format(self.count)
        shutil.copytree(str(template), str(run / "venv"), symlinks=True)
        (run / "home").mkdir()
        return run / "venv", run / "home"

    def env(self, home=None):
        return dict(self.env0, HOME=str(home or self.base))

    def must(self, what, result, ok=(0,)):
        if result[1] not in ok:
            sys.exit("bench: {} on Python {} failed (exit {}):\n{}".format(what, self.version, result[1], result[2]))
        return result

    def round(self):
        """One sample of each case, in a fixed interleaved order."""
        sample = {}
        venv, home = self.fresh(self.bare)
        sample["ensurepip"] = self.must("ensurepip", timed([venv_python(venv), "-m", "ensurepip"], self.env(home)))
        venv, home = self.fresh(self.with_pip)
        wanted = ["pip"] + (["truststore"] if tuple(map(int, self.version.split("."))) >= (3, 10) else [])
        sample["by_hand"] = self.must("pip install by hand", timed(
            [venv_python(venv), "-m", "pip", "install", "--upgrade", "--no-index", "--find-links",
             self.bundle / "wheels"]
            + wanted, self.env(home)))
        venv, home = self.fresh(self.bare)
        bootstrap = [venv_python(venv), self.bundle / "bootstrap.py", "--offline"]
        sample["first"] = self.must("bootstrap.py", timed(bootstrap, self.env(home)))
        sample["rerun"] = self.must("bootstrap.py (re-run)", timed(bootstrap, self.env(home)))
        sample["doctor"] = self.must("bootstrap.py doctor", timed(
            [venv_python(venv), self.bundle / "bootstrap.py", "doctor"], self.env(home)), ok=(0, 1))
        return sample, venv, home

    def memory_and_outcome(self):
        """The extra round: peak RSS of bootstrap.py itself and of its pip child; what a first run left."""
        venv, home = self.fresh(self.bare)
        rss = {}
        for label in ("first", "rerun"):
            out = self.base / "rss-{}.json".format(label)
            self.must("bootstrap.py under the RSS wrapper", timed(
                [venv_python(venv), "-c", RSS_WRAPPER, out, self.bundle / "bootstrap.py", "--offline"],
                self.env(home)))
            rss[label] = json.loads(out.read_text())
        doctor_out = self.base / "rss-doctor.json"
        self.must("doctor under the RSS wrapper", timed(
            [venv_python(venv), "-c", RSS_WRAPPER, doctor_out, self.bundle / "bootstrap.py", "doctor"],
            self.env(home)), ok=(0, 1))
        rss["doctor"] = json.loads(doctor_out.read_text())
        probe = self.must("the installed pip", timed([venv_python(venv), "-c", (
            "import json, importlib.util as u, pip; print(json.dumps([pip.__version__, "
            "u.find_spec('truststore') is not None]))")], self.env(home)))
        pip_version, has_truststore = json.loads(probe[2].strip().splitlines()[-1])
        config = home / ".config" / "pip" / "pip.conf"
        return {"rss": rss, "pip": pip_version, "truststore": has_truststore,
                "pip_conf_cert": config.is_file() and "cert =" in config.read_text()}


def inside(config_path):
    config = json.loads(Path(config_path).read_text())
    results = {"pythons": {}}
    for version, interp in config["pythons"]:
        print("bench: Python {} ...".format(version), file=sys.stderr, flush=True)
        runner = Runner(config, version, interp)
        samples = {case: [] for case in CASES}
        outputs = {}
        for i in range(config["warmup"] + config["repeat"]):
            sample, _, _ = runner.round()
            if i >= config["warmup"]:
                for case in CASES:
                    samples[case].append({"s": sample[case][0], "rss_kb": sample[case][3], "cpu_s": sample[case][4]})
            outputs = {case: sample[case][2] for case in CASES}
        entry = {"samples": samples, "output": outputs}
        entry.update(runner.memory_and_outcome())
        results["pythons"][version] = entry
        if config["tmpfs"]:
            subprocess.run(["umount", runner.env0["TMPDIR"]], check=True)
        shutil.rmtree(str(runner.base), ignore_errors=True)
    (Path(config["work"]) / "results.json").write_text(json.dumps(results))


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------

def stats(samples):
    times = [s["s"] for s in samples]
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def paired(samples, a, b):
    """The ratio a/b within each round, then the median and range of those: a round's cases run back to
    back, so a machine that is faster or slower for a while (shared hosts) moves both alike."""
    each = [x["s"] / y["s"] for x, y in zip(samples[a], samples[b])]
    return {"median": statistics.median(each), "min": min(each), "max": max(each)}


def summarize(results):
    """Per Python: median/min/max per case, the ratios of medians, and which targets are met."""
    rows = {}
    for version, entry in results["pythons"].items():
        st = {case: stats(entry["samples"][case]) for case in CASES}
        ratios = {"first_vs_ensurepip": paired(entry["samples"], "first", "ensurepip"),
                  "by_hand_vs_ensurepip": paired(entry["samples"], "by_hand", "ensurepip"),
                  "rerun_vs_first": paired(entry["samples"], "rerun", "first")}
        ratio = {name: r["median"] for name, r in ratios.items()}
        met = {"first_vs_ensurepip": ratio["first_vs_ensurepip"] <= TARGETS["first_vs_ensurepip"],
               "rerun_vs_first": ratio["rerun_vs_first"] <= TARGETS["rerun_vs_first"],
               "doctor_s": st["doctor"]["max"] <= TARGETS["doctor_s"]}
        rows[version] = {"stats": st, "ratio": ratio, "ratios": ratios, "met": met}
    return rows


def fmt(st):
    return "{:.2f} s ({:.2f}–{:.2f})".format(st["median"], st["min"], st["max"])


def mib(kb):
    return "{:.0f} MiB".format(kb / 1024)


def report(results):
    rows = summarize(results)
    results["summary"] = rows
    size = results["size"]
    print("\ntrustfix benchmarks, {}; {}".format(results["date"], results["machine"]))
    print("times: median (min–max) of {} timed rounds after {} untimed warm-up round(s); offline sandbox; TMPDIR {}; "
          "{:.0f} s in all\n".format(results["repeat"], results["warmup"],
                                   "on a tmpfs" if results.get("tmpfs") else "unset (/tmp)", results["wall_s"]))
    print("| Python | `ensurepip` | pip by hand | bootstrap.py, first run | first ÷ ensurepip | re-run "
          "| re-run ÷ first | doctor, offline | peak RSS: bootstrap.py / its pip |")
    print("|---|---|---|---|---|---|---|---|---|")
    for version, row in rows.items():
        st, ratio, met = row["stats"], row["ratio"], row["met"]
        rss = results["pythons"][version]["rss"]
        ratios = row["ratios"]
        print("| {} | {} | {} | {} | **{:.2f}×** ({:.2f}–{:.2f}) {} | {} | **{:.1%}** {} | {} {} | {} / {} |".format(
            version, fmt(st["ensurepip"]), fmt(st["by_hand"]), fmt(st["first"]),
            ratio["first_vs_ensurepip"], ratios["first_vs_ensurepip"]["min"], ratios["first_vs_ensurepip"]["max"],
            "✓" if met["first_vs_ensurepip"] else "✗", fmt(st["rerun"]),
            ratio["rerun_vs_first"], "✓" if met["rerun_vs_first"] else "✗", fmt(st["doctor"]),
            "✓" if met["doctor_s"] else "✗", mib(rss["first"]["self_kb"]), mib(rss["first"]["children_kb"])))
    print("\nzip from `build.py zip`: {:,} bytes; its {} wheels: {:,} bytes; **{:.3f}×** {} (target ≤ {}×)".format(
        size["zip_bytes"], size["wheels"], size["wheel_bytes"], size["ratio"],
        "✓" if size["ratio"] <= TARGETS["zip_vs_wheels"] else "✗", TARGETS["zip_vs_wheels"]))
    print("ratios: the median (min–max) of the ratios within each round")
    print("targets: first run ≤ {}× ensurepip; re-run ≤ {:.0%} of a first run; doctor offline ≤ {:.0f} s".format(
        TARGETS["first_vs_ensurepip"], TARGETS["rerun_vs_first"], TARGETS["doctor_s"]))
    for version in rows:
        entry = results["pythons"][version]
        rerun_children = entry["rss"]["rerun"]["children_kb"]
        print("Python {}: installed pip {}{}{}; the re-run started {}".format(
            version, entry["pip"], " + truststore" if entry["truststore"] else "",
            ", cert set in pip.conf" if entry["pip_conf_cert"] else ", no pip.conf (pip uses the OS store)",
            "no child process" if rerun_children == 0 else "a child process ({})".format(mib(rerun_children))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--python", action="append", metavar="X.Y", help="only this Python (repeatable)")
    parser.add_argument("-n", "--repeat", type=int, default=5, help="timed rounds per Python (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write every sample and the summary here")
    parser.add_argument("--tmpfs", action="store_true",
                        help="temporary files (TMPDIR) on a tmpfs, as /tmp is on Fedora, Arch and Debian 13")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (for a look at the runs)")
    parser.add_argument("--inside", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        inside(args.inside)
        return 0
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be at least 1 and --warmup at least 0")
    return outside(args)


if __name__ == "__main__":
    sys.exit(main())
