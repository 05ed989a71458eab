"""The corporate network in a box: CAs, a real HTTPS index, a real intercepting proxy, a laptop sandbox.

Everything runs on 127.0.0.1. See "Tests: the corporate network in a box" in DESIGN.md.
"""
import base64
import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DISTRO_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"


# --- interpreters ---------------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Interp:
    version: tuple
    path: Path

    def __str__(self):
        return "{}.{}".format(*self.version)


def _version_of(path):
    try:
        out = subprocess.run([str(path), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=20,
                             env={"PATH": CLEAN_PATH}, universal_newlines=True)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r"^(\d+)\.(\d+)$", out.stdout.strip())
    return (int(m.group(1)), int(m.group(2))) if out.returncode == 0 and m else None


# The environment as the session started: tests swap HOME (and scrub variables) before they look for a Python.
_ENV = dict(os.environ)
IN_CI = _ENV.get("CI", "").lower() == "true"
NEWEST = (3, 13)                    # CI has every CPython 3.8 .. NEWEST, and each older one a test names


def _output(argv):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_ENV, timeout=20,
                              universal_newlines=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _candidates():
    """pyenv's interpreters (`pyenv versions --bare` under `pyenv root`, or the versions folder of
    PYENV_ROOT / ~/.pyenv where the pyenv command is missing), python3.X on PATH, and `py -0p` on Windows."""
    pyenv = shutil.which("pyenv", path=_ENV.get("PATH"))
    if pyenv:
        root = _output([pyenv, "root"]).strip()
        for version in _output([pyenv, "versions", "--bare"]).split():
            yield os.path.join(root, "versions", version, "bin", "python")
    else:
        home = _ENV.get("HOME") or os.path.expanduser("~")
        for root in filter(None, [_ENV.get("PYENV_ROOT"), os.path.join(home, ".pyenv")]):
            yield from sorted(glob.glob(os.path.join(root, "versions", "*", "bin", "python")))
    for minor in range(6, 20):
        found = shutil.which("python3.{}".format(minor), path=_ENV.get("PATH"))
        if found:
            yield found
    if os.name == "nt" and shutil.which("py", path=_ENV.get("PATH")):
        for line in _output(["py", "-0p"]).splitlines():
            m = re.search(r"([A-Za-z]:\\.*python\.exe)", line)
            if m:
                yield m.group(1)


_CACHE = {}


def _all_pythons():
    """{(major, minor): Interp}: the first candidate of each version that really runs (pyenv's python3.X
    shims refuse to, and are dropped)."""
    if "all" not in _CACHE:
        seen, found = set(), []
        for candidate in _candidates():
            real = os.path.realpath(candidate)
            if real in seen or not os.path.exists(real):
                continue
            seen.add(real)
            version = _version_of(candidate)
            if version:
                found.append(Interp(version, Path(candidate)))
        by_version = {}
        for interp in sorted(found):
            by_version.setdefault(interp.version, interp)
        _CACHE["all"] = by_version
    return _CACHE["all"]


def pythons(min=(3, 8), max=None):
    """One Interp per minor version from min to max (default: every one found): those found here, and,
    for each version from min to NEWEST not found, an Interp whose path is None. A test that gets one
    fails in CI and skips elsewhere, naming the version (conftest.py); make_venv and by_version do the same."""
    found = _all_pythons()
    versions = set(v for v in found if v >= min and (max is None or v <= max) and v[0] == 3)
    top = NEWEST if max is None or max > NEWEST else max
    if min[0] == 3:
        versions |= set((3, minor) for minor in range(min[1], top[1] + 1))
    return [found.get(v) or Interp(v, None) for v in sorted(versions)]


def missing(interp):
    """Why interp cannot be used (its version is not installed here), or None."""
    if interp.path is not None:
        return None
    return "Python {} is not installed here (looked for pyenv's versions, python3.X on PATH, py -0p)".format(interp)


def need(interp):
    """interp itself; or, if it is missing, fail in CI (env CI=true) and skip elsewhere, saying which."""
    why = missing(interp)
    if why:
        import pytest
        if IN_CI:
            pytest.fail("CI=true but " + why)
        pytest.skip(why)
    return interp


def by_version(version):
    """The interpreter of that (major, minor) — 3.6 and 2.7 too — or fail (CI) / skip (elsewhere)."""
    return need(_all_pythons().get(tuple(version)) or Interp(tuple(version), None))


def scrubbed_env(home=None, extra=None):
    """A laptop's environment: no PIP_*, no CA-bundle variables, nothing of this machine's setup."""
    env = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb"}
    if home:
        env["HOME"] = str(home)
    env.update(extra or {})
    return env


def make_venv(interp, path, with_pip):
    """A venv of interp at path; with_pip=True gives the old pip that venv bundles. Returns its python."""
    args = [str(need(interp).path), "-m", "venv", str(path)]
    if not with_pip:
        args.insert(3, "--without-pip")
    env = scrubbed_env(home=path, extra={"PIP_CONFIG_FILE": os.devnull})
    subprocess.run(args, check=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
    return Path(path) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


# --- certificates and the OS store ------------------------------------------------------------------

def write_store(folder, extra_pems):
    """An OS trust store folder as Debian lays it out: ca-certificates.crt + hashed links (openssl rehash)."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    distro = DISTRO_BUNDLE.read_bytes() if DISTRO_BUNDLE.exists() else b""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", distro, re.S)
    blocks += [p.strip() + b"\n" for p in extra_pems]
    for i, block in enumerate(blocks):
        (folder / "cert-{:04d}.pem".format(i)).write_bytes(block if block.endswith(b"\n") else block + b"\n")
    (folder / "ca-certificates.crt").write_bytes(b"".join(b if b.endswith(b"\n") else b + b"\n" for b in blocks))
    subprocess.run(["openssl", "rehash", str(folder)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return folder


# --- test wheels ----------------------------------------------------------------------------------

def build_wheel(folder, name="corp-hello", version="1.0"):
    """A tiny valid pure-Python wheel, made here (never downloaded)."""
    module = name.replace("-", "_")
    dist = "{}-{}.dist-info".format(module, version)
    files = {
        "{}/__init__.py".format(module): "GREETING = 'hello from the corporate network'\n",
        dist + "/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\n".format(name, version),
        dist + "/WHEEL": "Wheel-Version: 1.0\nGenerator: trustfix-testbed\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append("{},sha256={},{}".format(path, digest, len(text.encode())))
    record.append(dist + "/RECORD,,")
    files[dist + "/RECORD"] = "\n".join(record) + "\n"
    target = Path(folder) / "{}-{}-py3-none-any.whl".format(module, version)
    with zipfile.ZipFile(target, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return target


# --- processes ------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """A real TCP server on 127.0.0.1 for the odd servers of the field (a trickling index, a domain
    proxy): each connection is handed to handle(conn, stop) in its own thread. A context manager;
    `port` is where it listens."""

    def __init__(self, handle):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.handle = handle
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        import threading
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.handle, args=(conn, self.stop), daemon=True).start()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def wait_for_port(port, proc, log, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited early ({}):\n{}".format(proc.returncode, _tail(log)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port {} not ready after {} s:\n{}".format(port, timeout, _tail(log)))


def _tail(log):
    try:
        return Path(log).read_text()[-3000:]
    except OSError:
        return "(no log)"


def stop(proc):
    """Stop a process started with start_new_session=True, with its whole group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)


class Index:
    def __init__(self, packages, cert, key, workdir):
        self.packages, self.host = Path(packages), "127.0.0.1"
        started = time.monotonic()
        portfile = Path(workdir) / "index.port"
        self.log = Path(workdir) / "index.log"
        self.proc = subprocess.Popen([sys.executable, str(HERE / "index_server.py"), str(packages), str(cert),
                                      str(key), str(portfile)], stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not portfile.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the index did not start:\n" + _tail(self.log))
            time.sleep(0.05)
        self.port = int(portfile.read_text())
        wait_for_port(self.port, self.proc, self.log)
        self.url = "https://127.0.0.1:{}/simple/".format(self.port)
        self.seconds = time.monotonic() - started

    def stop(self):
        stop(self.proc)


class Proxy:
    def __init__(self, index, confdir, public_pem, workdir, auth=None):
        started = time.monotonic()
        self.port = free_port()
        self.log = Path(workdir) / "proxy-{}.log".format(self.port)
        args = [sys.executable, "-c", "from mitmproxy.tools.main import mitmdump; mitmdump()",
                "--listen-host", "127.0.0.1", "--listen-port", str(self.port),
                "--set", "confdir={}".format(confdir), "--set", "ssl_verify_upstream_trusted_ca={}".format(public_pem),
                "--set", "connection_strategy=lazy", "-s", str(HERE / "proxy_addon.py")]
        if auth:
            args += ["--set", "proxyauth={}".format(auth)]
        env = dict(os.environ, TESTBED_INDEX_PORT=str(index.port))
        self.proc = subprocess.Popen(args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        wait_for_port(self.port, self.proc, self.log, timeout=60)
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.seconds = time.monotonic() - started

    def stop(self):
        stop(self.proc)


# --- the laptop sandbox -----------------------------------------------------------------------------

MOUNTS = r"""set -e
empty="$1"; store="$2"; offline="$3"; machine="$4"; shift 4
if [ -n "$machine" ]; then
  # machine-wide files (--scope global) land in the sandbox's own copy-on-write layers, never on /etc
  mount -t overlay trustfix-etc -o "lowerdir=/etc,upperdir=$machine/etc,workdir=$machine/etc-work" /etc
  mount -t overlay trustfix-share -o "lowerdir=/usr/local/share,upperdir=$machine/share,workdir=$machine/share-work" /usr/local/share
else
  mount --bind "$empty" /etc/pip.conf
  if [ -e /etc/xdg/pip/pip.conf ]; then mount --bind "$empty" /etc/xdg/pip/pip.conf; fi
fi
mount --bind "$store" /etc/ssl/certs
if [ "$offline" = 1 ]; then ip link set lo up; fi
exec "$@"
"""


def _report_schema():
    """tests/report_schema.py (validate_report), also when testbed is imported without tests/ on sys.path."""
    try:
        import report_schema
    except ImportError:
        import importlib.util
        spec = importlib.util.spec_from_file_location("report_schema", str(HERE.parent / "report_schema.py"))
        report_schema = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(report_schema)
        sys.modules["report_schema"] = report_schema
    return report_schema


def sandbox_problem():
    """Why the sandbox cannot be made here, or None."""
    if os.name != "posix" or os.geteuid() != 0:
        return "the laptop sandbox needs Linux and root (unshare -m, bind mounts)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-m", "-n", "true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if probe.returncode != 0:
        return "unshare -m -n failed: " + probe.stdout.decode(errors="replace")
    if not Path("/etc/pip.conf").exists():
        Path("/etc/pip.conf").write_text("")     # a bind mount needs a target; empty is what a laptop has
    return None


class Sandbox:
    """A fresh corporate laptop: masked /etc/pip.conf, its own OS store, empty HOME, scrubbed env."""

    def __init__(self, root, store_dir, empty_file, offline=False, proxy=None, machine_wide=False):
        self.home = Path(root) / "home"
        self.home.mkdir(parents=True)
        self.store_dir, self.empty, self.offline = Path(store_dir), Path(empty_file), offline
        self.machine = None
        if machine_wide:
            # /etc and /usr/local/share writable, through overlays whose upper layers live here; a laptop has
            # no /etc/pip.conf (nor /etc/xdg/pip/pip.conf): whiteouts hide this machine's
            self.machine = Path(root) / "machine"
            for name in ("etc", "etc-work", "share", "share-work", "etc/xdg/pip"):
                (self.machine / name).mkdir(parents=True, exist_ok=True)
            for hidden in ("etc/pip.conf", "etc/xdg/pip/pip.conf"):
                os.mknod(str(self.machine / hidden), 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        extra = {}
        if proxy is not None:
            for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
                extra[var] = proxy.url
        self.env = scrubbed_env(home=self.home, extra=extra)

    def argv(self, argv):
        """The command line that runs argv in the sandbox (its mounts, then exec: argv is that process)."""
        return ["unshare", "-m"] + (["-n"] if self.offline else []) + [
            "--", "/bin/sh", "-c", MOUNTS, "sh", str(self.empty), str(self.store_dir),
            "1" if self.offline else "0", str(self.machine or "")] + [str(a) for a in argv]

    def run(self, argv, cwd=None, env_extra=None, timeout=180, check=False, user=None, umask=None):
        """argv in the sandbox; user=(uid, gid) runs it as that unprivileged user (setpriv, no groups),
        umask=0o077 under that umask (root's on hardened machines)."""
        env = dict(self.env, **(env_extra or {}))
        prefix = []
        if user is not None:
            prefix = ["setpriv", "--reuid={}".format(user[0]), "--regid={}".format(user[1]), "--clear-groups", "--"]
        if umask is not None:
            prefix = ["/bin/sh", "-c", 'umask {:03o}; exec "$@"'.format(umask), "sh"] + prefix
        args = self.argv(prefix + list(argv))
        result = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, timeout=timeout)
        # every bootstrap.py --json run, whatever its exit code, prints one document that follows the schema
        _report_schema().check_run(argv, env, result.returncode, result.stdout, result.stderr)
        if check and result.returncode != 0:
            raise AssertionError("{} failed ({}):\n{}{}".format(argv, result.returncode, result.stdout, result.stderr))
        return result
