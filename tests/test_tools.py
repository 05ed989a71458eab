"""Beyond pip (issue 17): `bootstrap.py --tools …` makes the developer's other tools trust the intercepting
proxy, each with its own documented setting, and `undo` puts every file back byte for byte.

End to end in the toolbelt bed (tests/testbed/toolbelt.py): the real uv, git, npm, requests and urllib in
the laptop sandbox, behind a real TLS-intercepting proxy that routes pypi.org, github.com and
registry.npmjs.org to loopback servers. Each scenario shows the tool failing before and working after.
conda does not run here: it is reported as not installed (and its file edits are unit-tested).
"""
import json
import os
from pathlib import Path

import pytest

from bundle_helpers import as_user, copy_bundle, tree, changes
from testbed import pythons, toolbelt
from testbed.toolbelt import out

pytestmark = pytest.mark.e2e

PAIR = [i for i in pythons(min=(3, 9)) if i.version == (3, 9)][:1] + pythons(min=(3, 10))[-1:]
CERT_ERROR = "CERTIFICATE_VERIFY_FAILED"


@pytest.fixture(scope="session")
def uv_path(bed_dir):
    """A folder holding only uv (put first on the sandbox's PATH: the developer has uv installed)."""
    folder = bed_dir / "uv-bin"
    folder.mkdir(exist_ok=True)
    if not (folder / "uv").exists():
        (folder / "uv").symlink_to(toolbelt.uv_bin())
    return "{}:{}".format(folder, toolbelt.scrubbed_env()["PATH"])


class Laptop:
    """A sandbox behind the toolbelt bed's proxy, with uv on PATH, a venv of interp with requests from the
    pinned wheels, and a copy of the bundle; every command runs with this machine's git/npm settings masked."""

    def __init__(self, sb, python, bundle, path, tmp):
        self.sb, self.python, self.bundle, self.env, self.tmp = sb, python, bundle, {"PATH": path}, tmp
        self.count = 0

    def run(self, argv, env=None, cwd=None):
        return toolbelt.run(self.sb, argv, env_extra=dict(self.env, **(env or {})), cwd=cwd)

    def bootstrap(self, *args, env=None):
        return self.run([self.python, self.bundle / "bootstrap.py"] + list(args), env=env, cwd=str(self.bundle))

    def fresh(self, name):
        self.count += 1
        return self.tmp / "{}-{}".format(name, self.count)

    # what the developer types next, each in a fresh folder (nothing cached, nothing installed)
    def uv_install(self):
        venv, cache = self.fresh("uv-venv"), {"UV_CACHE_DIR": str(self.fresh("uv-cache"))}
        self.run([toolbelt.uv_bin(), "venv", "-q", "--python", self.python, venv], env=cache).check_returncode()
        return self.run([toolbelt.uv_bin(), "pip", "install", "--python", venv / "bin" / "python", "--index-url",
                         toolbelt.INDEX_URL, "corp-hello"], env=cache)

    def get(self, client, env=None):
        return self.run([self.python, "-c", toolbelt.GET[client].format(url=toolbelt.INDEX_URL + "/")], env=env)

    def git_clone(self):
        return self.run(["git", "clone", toolbelt.REPO_URL, self.fresh("clone")])

    def npm_install(self):
        folder = self.fresh("npm-project")
        folder.mkdir()
        env = {"npm_config_cache": str(self.fresh("npm-cache")), "npm_config_update_notifier": "false",
               "npm_config_audit": "false", "npm_config_fund": "false", "npm_config_fetch_retries": "0"}
        return self.run(["npm", "install", toolbelt.NPM_PKG], env=env, cwd=str(folder))

    def works(self):
        """{what: (returncode == 0, output)} for every tool through the proxy."""
        results = {"uv": self.uv_install(), "requests": self.get("requests"), "urllib": self.get("urllib"),
                   "git": self.git_clone(), "npm": self.npm_install()}
        return {name: (r.returncode == 0, out(r)) for name, r in results.items()}


@pytest.fixture(scope="session", params=PAIR, ids=str)
def requests_venv(request, tmp_path_factory):
    """A venv with requests from the pinned wheels per Python of PAIR; each test works on its own copy."""
    return request.param, toolbelt.requests_venv(request.param, tmp_path_factory.mktemp("tools-venv") / "venv")


@pytest.fixture
def dev_laptop(sandbox, toolbed, uv_path, requests_venv, tmp_path):
    def make(corp_in_os_store):
        import shutil
        interp, python = requests_venv
        venv = tmp_path / "venv"
        shutil.copytree(str(python.parent.parent), str(venv), symlinks=True)
        return Laptop(sandbox(corp_in_os_store=corp_in_os_store, proxy=toolbed.proxy), venv / "bin" / "python",
                      copy_bundle(tmp_path / "bundle"), uv_path, tmp_path)
    return make


def tools_of(doc):
    return {t["tool"]: t for t in doc["tools"]}


def failing(results):
    return sorted(name for name, (ok, _) in results.items() if not ok)


def test_tools_all_leaves_uv_requests_urllib_git_and_npm_working_and_undo_puts_everything_back(dev_laptop):
    """The common laptop: IT put the corporate root into the OS store. uv, requests and npm carry their own
    roots and fail; after `--tools all` all of them work; undo restores HOME and the venv byte for byte."""
    lt = dev_laptop(True)
    venv = lt.python.parent.parent
    before_files = tree(lt.sb.home, venv)
    before = lt.works()
    assert failing(before) == ["npm", "requests", "uv"], before
    assert CERT_ERROR in before["requests"][1] and "UnknownIssuer" in before["uv"][1]

    result = lt.bootstrap("--tools", "all", "--json")
    assert result.returncode == 0, out(result)
    doc = json.loads(result.stdout)
    tools = tools_of(doc)
    assert {t: tools[t]["status"] for t in tools} == {"uv": "changed", "requests": "changed", "conda": "skipped",
                                                      "git": "ok", "npm": "changed"}, tools
    assert tools["conda"]["summary"] == "conda is not installed here (not on PATH)"
    assert tools["git"]["summary"] == "it verifies with the OS store, which holds the company CA(s): nothing to set"
    home = lt.sb.home
    assert (home / ".config" / "uv" / "uv.toml").read_text().endswith("system-certs = true\n")
    bundle = doc["plan"]["bundle_path"]
    assert not (home / ".gitconfig").exists()                     # sslCAInfo would hide the OS store's other CAs
    assert "cafile={}\n".format(bundle) in (home / ".npmrc").read_text()
    pth = Path(tools["requests"]["path"])
    assert pth.name == "trustfix.pth" and pth.parent.name == "site-packages" and venv in pth.parents
    assert all(str(p) in doc["files_changed"] for p in (pth, home / ".npmrc", home / ".config" / "uv" / "uv.toml"))
    verified = [s for s in doc["steps"] if s["step"] == "verify"]
    assert [s["status"] for s in verified] == ["ok"] * 5, verified       # pip, then uv, requests, git, npm

    after = lt.works()
    assert failing(after) == [], after

    again = lt.bootstrap("--tools", "all", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False, out(again)
    assert {t["tool"]: t["status"] for t in json.loads(again.stdout)["tools"]}["npm"] == "ok"

    undone = lt.bootstrap("undo")
    assert undone.returncode == 0, out(undone)
    assert tree(lt.sb.home, venv) == before_files, changes(before_files, tree(lt.sb.home, venv))
    assert failing(lt.works()) == ["npm", "requests", "uv"]


def test_a_ca_given_but_not_in_the_os_store_fixes_git_and_requests_through_the_bundle(dev_laptop, cas):
    """The root is not in the OS store; it is given with --ca-file. git (OS store on Linux) fails before and
    works after with http.sslCAInfo = the bundle; uv is set to the OS store and told what it still lacks."""
    lt = dev_laptop(False)
    (lt.sb.home / ".gitconfig").write_text("[user]\n\tname = Dev\n")             # the developer's own
    before_files = tree(lt.sb.home, lt.python.parent.parent)
    assert not lt.git_clone().returncode == 0
    result = lt.bootstrap("--ca-file", cas.corp_pem, "--tools", "git,uv,requests")
    assert result.returncode == 0, out(result)
    bundle = lt.sb.home / ".local" / "share" / "trustfix" / "ca-bundle.pem"
    assert "\tsslCAInfo = {}\n".format(bundle) in (lt.sb.home / ".gitconfig").read_text()
    assert lt.git_clone().returncode == 0
    assert "uv and requests will trust the OS store, which lacks" in result.stdout or \
        "uv will trust the OS store, which lacks" in result.stdout, result.stdout
    assert "--add-to-os-store" in result.stdout
    requests = lt.get("requests")
    if lt.python.parent.parent.joinpath("lib", "python3.9").exists():       # < 3.10: the bundle, for both clients
        assert requests.returncode == 0, out(requests)
        assert lt.get("urllib").returncode == 0
    else:                                                                  # >= 3.10: the OS store lacks it, as said
        assert requests.returncode == 1 and CERT_ERROR in requests.stderr, out(requests)
    assert lt.bootstrap("undo").returncode == 0
    assert tree(lt.sb.home, lt.python.parent.parent) == before_files
    assert not lt.git_clone().returncode == 0


def test_the_start_up_hook_never_stops_python_and_can_be_turned_off(dev_laptop):
    lt = dev_laptop(True)
    assert lt.bootstrap("--tools", "requests").returncode == 0
    assert lt.get("requests").returncode == 0
    off = lt.get("requests", env={"TRUSTFIX_STARTUP_HOOK": "0"})
    assert off.returncode == 1 and CERT_ERROR in off.stderr, out(off)
    site = next(lt.python.parent.parent.glob("lib/python3*/site-packages"))
    broken = site / "truststore" / "__init__.py"
    if broken.exists():                                                     # >= 3.10: truststore that fails to import
        broken.write_text("raise RuntimeError('a broken truststore')\n")
    else:                                                                   # < 3.10: a hook line that raises
        (site / "aaa-broken.pth").write_text("import os; raise RuntimeError('broken')\n")
        broken = None
    alive = lt.run([lt.python, "-c", "print('alive')"])
    if broken is not None:
        assert alive.returncode == 0 and alive.stdout == "alive\n" and alive.stderr == "", out(alive)
    else:
        assert alive.returncode == 0 and alive.stdout == "alive\n", out(alive)


@pytest.mark.parametrize("requests_venv", PAIR[-1:], indirect=True, ids=str)     # the same on every Python
def test_a_tool_config_that_cannot_be_read_is_left_alone_with_one_sentence(dev_laptop, cas):
    lt = dev_laptop(False)                        # git needs http.sslCAInfo: the OS store lacks the CA
    uv_toml = lt.sb.home / ".config" / "uv" / "uv.toml"
    uv_toml.parent.mkdir(parents=True)
    uv_toml.write_text("system-certs = tru\n")
    gitconfig = lt.sb.home / ".gitconfig"
    gitconfig.write_text("[http\n\tsslVerify = true\n")
    result = lt.bootstrap("--ca-file", cas.corp_pem, "--tools", "uv,git", "--json")
    assert result.returncode == 0, out(result)
    tools = tools_of(json.loads(result.stdout))
    assert tools["uv"]["status"] == "warning" and "cannot read {}".format(uv_toml) in tools["uv"]["summary"], tools
    assert tools["git"]["status"] == "warning" and "cannot read {}".format(gitconfig) in tools["git"]["summary"], tools
    assert uv_toml.read_text() == "system-certs = tru\n" and gitconfig.read_text() == "[http\n\tsslVerify = true\n"


def test_doctor_names_each_tool_and_whether_it_reaches_its_registry(dev_laptop):
    lt = dev_laptop(True)
    before = lt.bootstrap("doctor", "--json")
    lines = {c["text"].split(" ")[0]: c for c in json.loads(before.stdout)["doctor"]["checks"] if c["name"] == "tools"}
    assert sorted(lines) == ["git", "npm", "uv"], lines
    assert lines["uv"]["status"] == "warning" and "its own copy of Mozilla's roots" in lines["uv"]["text"]
    assert lines["npm"]["status"] == "warning" and "FAILS" in lines["npm"]["text"]
    assert lines["git"]["status"] == "ok" and "reaches github.com" in lines["git"]["text"]
    assert lt.bootstrap("--tools", "all").returncode == 0
    after = json.loads(lt.bootstrap("doctor", "--json").stdout)["doctor"]
    tools = {c["text"].split(" ")[0]: c for c in after["checks"] if c["name"] == "tools"}
    assert [c["status"] for c in tools.values()] == ["ok"] * 3, tools
    assert "system-certs = true in" in tools["uv"]["text"] and "cafile=" in tools["npm"]["text"]
    requests = [c for c in after["checks"] if c["name"] == "clients"][1]
    assert requests["status"] == "ok" and ("trustfix.pth" in requests["text"] or "REQUESTS_CA_BUNDLE" in requests["text"])


SYSTEM_PYTHON = Path("/usr/bin/python3.11")


def test_machine_wide_git_trust_for_every_user_and_undo_puts_etc_gitconfig_back(sandbox, toolbed, cas, user_home):
    """As a fleet agent runs it: root, --scope global --tools git, the company CA not in the OS store. git's
    system file (/etc/gitconfig, in the sandbox's copy-on-write /etc) gets http.sslCAInfo = the machine's
    bundle, and an unprivileged user's `git clone` through the proxy fails before and works after."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip("{} is not here (the OS's Python, as a fleet's laptops have)".format(SYSTEM_PYTHON))
    sb = sandbox(corp_in_os_store=False, proxy=toolbed.proxy, machine_wide=True)
    bundle = copy_bundle(user_home / "bundle")
    for path in [bundle] + list(bundle.rglob("*")):
        os.chmod(str(path), 0o755 if path.is_dir() else 0o644)
    ca = user_home / "corp-root.pem"
    ca.write_bytes(cas.corp_pem.read_bytes())
    os.chmod(str(ca), 0o644)
    read = lambda: sb.run(["cat", "/etc/gitconfig"]).stdout
    before = read()
    clone = lambda name: as_user(sb, user_home, ["git", "clone", toolbelt.REPO_URL, str(user_home / name)])
    assert clone("before").returncode == 128

    result = sb.run([str(SYSTEM_PYTHON), str(bundle / "bootstrap.py"), "--json", "--scope", "global", "--ca-file",
                     str(ca), "--tools", "git"], cwd=str(bundle))
    doc = json.loads(result.stdout)
    assert result.returncode == 0, out(result)
    assert tools_of(doc)["git"]["status"] == "changed" and tools_of(doc)["git"]["path"] == "/etc/gitconfig"
    assert read() == before + "[http]\n\tsslCAInfo = /usr/local/share/trustfix/ca-bundle.pem\n"
    after = clone("after")
    assert after.returncode == 0, out(after)

    undone = sb.run([str(SYSTEM_PYTHON), str(bundle / "bootstrap.py"), "undo", "--scope", "global"], cwd=str(bundle))
    assert undone.returncode == 0, out(undone)
    assert read() == before
    assert clone("undone").returncode == 128
