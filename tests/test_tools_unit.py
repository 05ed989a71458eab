"""--tools (issue 17), in process: each tool's file edit, checked where the tool runs here by the real tool
(uv reads every uv.toml written; git edits its own files), the start-up hook run by a real interpreter, conda's
search path and precedence against its documentation, and the journal's acceptance of the files --tools writes.
The tools' end-to-end behaviour through the intercepting proxy is tests/test_tools.py."""
import json
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from unit_helpers import bootstrap, plan_of, survey

UV = shutil.which("uv") or __import__("uv").find_uv_bin()
BUNDLE = "/home/dev/.local/share/trustfix/ca-bundle.pem"


def tool_plan(strategy="bundle"):
    return plan_of(strategy=strategy, bundle_path=BUNDLE)


# --- the option ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, tools, unknown", [
    ("all", ["uv", "requests", "conda", "git", "npm"], []),
    ("git, uv", ["uv", "git"], []),
    ("npm,all", ["uv", "requests", "conda", "git", "npm"], []),
    ("", [], []),
    ("uv,pipx", ["uv"], ["pipx"])])
def test_tools_list_keeps_the_tools_order_and_names_what_it_does_not_know(text, tools, unknown):
    assert bootstrap.tools_list(text) == (tools, unknown)


def test_an_unknown_tool_is_a_usage_error_naming_it_and_the_choices(capsys):
    with pytest.raises(SystemExit) as stop:
        bootstrap.parse_args(["--tools", "uv,pipx"])
    assert stop.value.code == 2
    assert "--tools (TRUSTFIX_TOOLS): unknown tool 'pipx'; choose from uv, requests, conda, git, npm, or all" in \
        capsys.readouterr().err


def test_trustfix_tools_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRUSTFIX_TOOLS", "git,npm")
    assert bootstrap.parse_args([]).tools == ["git", "npm"]
    assert bootstrap.parse_args(["--tools", "uv"]).tools == ["uv"]


# --- uv: every text written is read by the real uv --------------------------------------------------------

UV_CASES = {
    "no file": ("", "# {}\nsystem-certs = true\n".format(bootstrap.TOOL_COMMENT)),
    "other keys": ("cache-dir = \"/tmp/c\"\n", "# {}\nsystem-certs = true\ncache-dir = \"/tmp/c\"\n".format(
        bootstrap.TOOL_COMMENT)),
    "a leading comment stays first": ("# mine\n\n[pip]\nindex-url = \"https://pypi.org/simple\"\n",
                                      "# mine\n# {}\nsystem-certs = true\n\n[pip]\nindex-url = "
                                      "\"https://pypi.org/simple\"\n".format(bootstrap.TOOL_COMMENT)),
    "off, replaced": ("native-tls = false\n[pip]\nnative-tls = false\n", "system-certs = true\n[pip]\nnative-tls = false\n"),
    "both names": ("native-tls = true\nsystem-certs = false\n", "system-certs = true\n"),
    "CRLF": ("offline = false\r\n", "# {}\r\nsystem-certs = true\r\noffline = false\r\n".format(bootstrap.TOOL_COMMENT)),
    "no final newline": ("offline = false", "# {}\nsystem-certs = true\noffline = false\n".format(bootstrap.TOOL_COMMENT)),
}


@pytest.mark.parametrize("case", sorted(UV_CASES))
def test_uv_toml_gets_system_certs_at_the_top_level_and_uv_reads_it(case):
    old, expected = UV_CASES[case]
    new = bootstrap._Uv.top_level_set(old, "system-certs")
    assert new == expected
    if "[pip]" not in new or "index-url" in new:                  # [pip] native-tls is not a uv setting
        assert bootstrap._Uv.accepts(UV, new) is None
    assert bootstrap._Uv.current(new) == ("system-certs", "true")


def test_uv_refuses_a_misspelt_value_and_the_plan_leaves_that_file_alone(laptop):
    path = Path(bootstrap._Uv.config_file("user"))
    path.parent.mkdir(parents=True)
    path.write_text("system-certs = tru\n")
    assert "TOML parse error" in bootstrap._Uv.accepts(UV, path.read_text())
    with pytest.raises(bootstrap.LeftAlone) as left:
        bootstrap._Uv.plan(tool_plan(), survey(), "user", (UV, "0.13.10"))
    assert str(left.value).startswith("uv 0.13.10 cannot read {} (error: Failed to parse".format(path))
    assert path.read_text() == "system-certs = tru\n"


def test_uv_plan_is_ok_when_set_and_a_change_with_what_was_there_otherwise(laptop):
    path = Path(bootstrap._Uv.config_file("user"))
    assert path == laptop / ".config" / "uv" / "uv.toml"
    change = bootstrap._Uv.plan(tool_plan(), survey(), "user", (UV, "0.13.10"))
    assert (change.status, change.setting, change.anchors) == ("change", "system-certs = true", "os")
    path.parent.mkdir(parents=True)
    path.write_text("native-tls = true\n")
    change = bootstrap._Uv.plan(tool_plan(), survey(), "user", (UV, "0.13.10"))
    assert change.status == "change" and change.data == b"system-certs = true\n"
    assert change.summary.endswith("(was: native-tls = true)")
    path.write_text("system-certs = true\n")
    assert bootstrap._Uv.plan(tool_plan(), survey(), "user", (UV, "0.13.10")).status == "ok"


def test_uv_config_file_per_scope(laptop, monkeypatch):
    assert bootstrap._Uv.config_file("global") == "/etc/uv/uv.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "/cfg")
    assert bootstrap._Uv.config_file("user") == "/cfg/uv/uv.toml"


# --- npm -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("old, value, expected", [
    ("", "/b.pem", "; {c}\ncafile=/b.pem\n"),
    ("registry=https://r/\ncafile=/old.pem\n", "/b.pem", "registry=https://r/\ncafile=/b.pem\n"),
    ("cafile = /a\ncafile=/b\n", "/b.pem", "cafile=/b.pem\n"),
    ("a=1\n[section]\ncafile=/x\n", "/b.pem", "a=1\n; {c}\ncafile=/b.pem\n[section]\ncafile=/x\n"),
    ("a=1\r\n", "C:\\Users\\d;x\\b.pem", "a=1\r\n; {c}\r\ncafile=\"C:\\\\Users\\\\d;x\\\\b.pem\"\r\n"),
])
def test_npmrc_gets_cafile_before_any_section(old, value, expected):
    assert bootstrap._Npm.ini_set(old, "cafile", value) == expected.format(c=bootstrap.TOOL_COMMENT)


def test_npm_plan_names_strict_ssl_false_and_needs_a_bundle(laptop):
    (laptop / ".npmrc").write_text("strict-ssl=false\n")
    change = bootstrap._Npm.plan(tool_plan(), survey(), "user", ("/usr/bin/npm", "11.19.1"))
    assert change.path == str(laptop / ".npmrc") and change.setting == "cafile=" + BUNDLE
    assert change.notes == ["{} sets strict-ssl=false, which switches TLS verification off for npm; remove that "
                            "line".format(laptop / ".npmrc")]
    with pytest.raises(bootstrap.Skip, match="no company CA is known here"):
        bootstrap._Npm.plan(tool_plan("none"), survey(), "user", ("/usr/bin/npm", "11.19.1"))


# --- git: the real git edits a copy; its own reader decides what it can read ------------------------------

def test_git_plan_sets_sslcainfo_through_git_and_names_what_was_there(laptop):
    (laptop / ".gitconfig").write_text("[user]\n\tname = Dev\n[http]\n\tsslCAInfo = /old.pem\n\tsslVerify = false\n")
    change = bootstrap._Git.plan(tool_plan(), survey(), "user", (shutil.which("git"), "2.39.5"))
    assert change.data.decode() == "[user]\n\tname = Dev\n[http]\n\tsslCAInfo = {}\n\tsslVerify = false\n".format(BUNDLE)
    assert change.summary.endswith("(was: http.sslCAInfo = /old.pem)")
    assert "sets http.sslVerify = false, which switches TLS verification off for git" in change.notes[0]
    assert (laptop / ".gitconfig").read_text().endswith("sslCAInfo = /old.pem\n\tsslVerify = false\n")   # unchanged


def test_git_plan_leaves_a_damaged_gitconfig_alone_naming_it(laptop):
    (laptop / ".gitconfig").write_text("[http\n")
    with pytest.raises(bootstrap.LeftAlone, match=r"git 2\.39\.5 cannot read {} \(fatal: bad config line 1".format(
            laptop / ".gitconfig")):
        bootstrap._Git.plan(tool_plan(), survey(), "user", (shutil.which("git"), "2.39.5"))
    assert bootstrap._Git.find()[1]                                  # --version does not stop on it


def test_git_config_file_follows_gits_rules(laptop, monkeypatch):
    git = shutil.which("git")
    assert bootstrap._Git.config_file("user", git) == str(laptop / ".gitconfig")
    xdg = laptop / ".config" / "git" / "config"
    xdg.parent.mkdir(parents=True)
    xdg.write_text("")
    assert bootstrap._Git.config_file("user", git) == str(xdg)           # only it exists: git writes there
    (laptop / ".gitconfig").write_text("")
    assert bootstrap._Git.config_file("user", git) == str(laptop / ".gitconfig")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/elsewhere/gitconfig")
    assert bootstrap._Git.config_file("user", git) == "/elsewhere/gitconfig"
    assert bootstrap._Git.config_file("global", git) == "/etc/gitconfig"


# --- conda: block YAML, its documented search path, which file wins -----------------------------------------

@pytest.mark.parametrize("old, value, expected", [
    ("", "truststore", "# {c}\nssl_verify: truststore\n"),
    ("channels:\n  - defaults\nssl_verify: false\n", "truststore", "channels:\n  - defaults\nssl_verify: truststore\n"),
    ("ssl_verify: true  # mine\n", "/b b.pem", "ssl_verify: '/b b.pem'\n"),
    ("ssl_verify: x\n", "C:\\it's\\b.pem", "ssl_verify: 'C:\\it''s\\b.pem'\n"),
])
def test_condarc_gets_ssl_verify(old, value, expected):
    assert bootstrap._Conda.yaml_set(old, "ssl_verify", value) == expected.format(c=bootstrap.TOOL_COMMENT)


@pytest.mark.parametrize("text", ["{channels: [defaults], ssl_verify: true}\n", "ssl_verify:\n  /b.pem\n",
                                  "channels:\n\t- defaults\n"])
def test_condarc_that_is_not_plain_block_yaml_is_left_alone(text):
    with pytest.raises(bootstrap.LeftAlone):
        bootstrap._Conda.yaml_set(text, "ssl_verify", "truststore")


@pytest.mark.parametrize("conda, python, value", [("23.9.0", "3.10.14", "truststore"), ("24.11.3", "3.12.7", "truststore"),
                                                  ("23.7.4", "3.11.5", BUNDLE), ("24.1.2", "3.9.18", BUNDLE)])
def test_conda_uses_truststore_from_23_9_on_python_3_10(conda, python, value):
    assert bootstrap._Conda.value({"conda_version": conda, "python_version": python}, BUNDLE) == value


def test_conda_search_path_is_the_documented_order(laptop, monkeypatch):
    monkeypatch.setenv("CONDA_PREFIX", "/envs/work")
    monkeypatch.setenv("CONDARC", "/cfg/mine.yml")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/xdg")
    home = str(laptop)
    trio = lambda d: [d + "/.condarc", d + "/condarc", d + "/condarc.d"]
    assert bootstrap._Conda.search_path("/opt/conda") == (
        trio("/etc/conda") + trio("/var/lib/conda") + trio("/opt/conda") + trio("/xdg/conda") +
        trio(home + "/.config/conda") + trio(home + "/.conda") + [home + "/.condarc"] + trio("/envs/work") +
        ["/cfg/mine.yml"])


def test_conda_plan_names_the_files_read_after_ours_that_set_ssl_verify(laptop, monkeypatch, tmp_path):
    prefix = tmp_path / "envs" / "work"
    (prefix / "condarc.d").mkdir(parents=True)
    (prefix / "condarc.d" / "proxy.yml").write_text("ssl_verify: false\n")
    (laptop / ".conda").mkdir()
    (laptop / ".conda" / ".condarc").write_text("ssl_verify: /read/before/ours.pem\n")       # ours wins over it
    monkeypatch.setenv("CONDA_PREFIX", str(prefix))
    monkeypatch.setenv("CONDA_SSL_VERIFY", "/env.pem")
    (laptop / ".condarc").write_text("channels:\n  - defaults\nssl_verify: false\n")
    info = {"conda_version": "24.11.3", "python_version": "3.12.7", "root_prefix": "/opt/conda",
            "user_rc_path": str(laptop / ".condarc"), "sys_rc_path": "/opt/conda/.condarc"}
    change = bootstrap._Conda.plan(tool_plan(), survey(), "user", ("/opt/conda/bin/conda", info))
    assert change.data == b"channels:\n  - defaults\nssl_verify: truststore\n" and change.anchors == "os"
    assert change.notes == [
        "{} sets ssl_verify: false, which switches TLS verification off for conda; --tools conda replaces it".format(
            laptop / ".condarc"),
        "{} sets ssl_verify: false, which conda reads after {} and so uses instead; remove it there".format(
            prefix / "condarc.d" / "proxy.yml", laptop / ".condarc"),
        "CONDA_SSL_VERIFY=/env.pem, which conda reads after {} and so uses instead; remove it there".format(
            laptop / ".condarc")]
    assert bootstrap._Conda.config_file("global", info) == "/opt/conda/.condarc"


def test_conda_on_an_old_python_needs_the_bundle(laptop):
    info = {"conda_version": "23.7.4", "python_version": "3.9.18", "user_rc_path": str(laptop / ".condarc")}
    change = bootstrap._Conda.plan(tool_plan(), survey(), "user", ("/c/conda", info))
    assert change.setting == "ssl_verify: " + BUNDLE and change.anchors == BUNDLE
    with pytest.raises(bootstrap.Skip, match="needs a CA bundle"):
        bootstrap._Conda.plan(tool_plan("none"), survey(), "user", ("/c/conda", info))


# --- requests: the start-up hook, run by real interpreters -----------------------------------------------------

HOOK_PROBE = textwrap.dedent("""\
    import json, os, site, ssl, sys
    site.addsitedir(sys.argv[1])
    print(json.dumps({v: os.environ.get(v) for v in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                                                      "TRUSTFIX_STARTUP_HOOK_SET")}))
    """)


def run_hook(python, folder, env):
    proc = subprocess.run([str(python), "-I", "-c", HOOK_PROBE, str(folder)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("version", [(3, 6), (3, 9)], ids=["3.6", "3.9"])
def test_the_bundle_hook_sets_only_what_is_unset_and_only_when_the_bundle_is_there(tmp_path, version):
    from testbed import by_version
    python = by_version(version).path
    bundle = tmp_path / "b é.pem"                                    # a non-ASCII path survives ascii()
    bundle.write_text("x")
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "trustfix.pth").write_text(bootstrap.pth_text(str(bundle)), encoding="ascii")
    base = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    assert run_hook(python, tmp_path / "hook", dict(base, LC_ALL="C")) == {         # 3.6 cannot spell it: nothing
        "REQUESTS_CA_BUNDLE": None, "SSL_CERT_FILE": None, "TRUSTFIX_STARTUP_HOOK_SET": None} if version < (3, 7) \
        else {"REQUESTS_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle),
              "TRUSTFIX_STARTUP_HOOK_SET": "REQUESTS_CA_BUNDLE SSL_CERT_FILE"}
    assert run_hook(python, tmp_path / "hook", base) == {
        "REQUESTS_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(bundle),
        "TRUSTFIX_STARTUP_HOOK_SET": "REQUESTS_CA_BUNDLE SSL_CERT_FILE"}
    assert run_hook(python, tmp_path / "hook", dict(base, REQUESTS_CA_BUNDLE="/mine.pem", SSL_CERT_DIR="/d")) == {
        "REQUESTS_CA_BUNDLE": "/mine.pem", "SSL_CERT_FILE": None, "TRUSTFIX_STARTUP_HOOK_SET": None}
    assert run_hook(python, tmp_path / "hook", dict(base, TRUSTFIX_STARTUP_HOOK="0"))["REQUESTS_CA_BUNDLE"] is None
    bundle.unlink()                                                  # the bundle is gone: nothing, and no error
    assert run_hook(python, tmp_path / "hook", base)["REQUESTS_CA_BUNDLE"] is None


def test_the_truststore_hook_replaces_ssl_context_and_survives_a_missing_truststore(tmp_path):
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "trustfix.pth").write_text(bootstrap.pth_text(None), encoding="ascii")
    code = "import site, ssl, sys; site.addsitedir(sys.argv[1]); print(ssl.SSLContext.__module__)"
    truststore = Path(__import__("pip._vendor.truststore").__file__).parent / "_vendor" / "truststore"
    (tmp_path / "lib").mkdir()
    shutil.copytree(str(truststore), str(tmp_path / "lib" / "truststore"))
    for pythonpath, expected in ((str(tmp_path / "lib"), "truststore._api\n"), ("", "ssl\n")):
        proc = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path / "hook")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath}, timeout=60)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, expected, "")


def test_bootstrap_takes_back_what_a_start_up_hook_did_in_its_own_process(monkeypatch):
    from pip._vendor import truststore
    original = ssl.SSLContext
    monkeypatch.setattr(ssl, "SSLContext", truststore.SSLContext)        # as the hook leaves it
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", BUNDLE)
    monkeypatch.setenv("SSL_CERT_FILE", BUNDLE)
    monkeypatch.setenv("TRUSTFIX_STARTUP_HOOK_SET", "REQUESTS_CA_BUNDLE SSL_CERT_FILE")
    monkeypatch.setattr(bootstrap, "INJECTED", {"by": None, "vars": {}})
    bootstrap.undo_startup_hook()
    assert ssl.SSLContext is original and bootstrap.pip_verifier().__class__ is original
    assert bootstrap.INJECTED["by"].startswith("a start-up hook (pip._vendor.truststore")
    assert bootstrap.INJECTED["vars"] == {"REQUESTS_CA_BUNDLE": BUNDLE, "SSL_CERT_FILE": BUNDLE}
    assert not {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "TRUSTFIX_STARTUP_HOOK_SET"} & set(os.environ)
    how, anchors, _ = bootstrap._Requests.now("user", None)
    assert anchors == "os" and how.startswith("the OS store (truststore, injected at start-up")


# --- the journal knows the files --tools writes, and nothing else ----------------------------------------------

def test_the_journal_accepts_the_tools_files_and_refuses_others(laptop, tmp_path):
    venv_site = tmp_path / "venv" / "lib" / "python3.12" / "site-packages"
    ok = [laptop / ".gitconfig", laptop / ".npmrc", laptop / ".condarc", laptop / ".config" / "uv" / "uv.toml",
          laptop / ".config" / "git" / "config", venv_site / "trustfix.pth", Path("/etc/gitconfig"),
          Path("/usr/etc/npmrc"), Path("/etc/uv/uv.toml"), laptop / "dotfiles" / "npmrc"]      # a linked dotfile's target
    for path in ok:
        assert bootstrap.writable_target(str(path)), path
    for path in (laptop / ".bashrc", venv_site / "evil.pth", Path("/etc/passwd"), laptop / "config",
                 venv_site / "trustfix.pth.d", tmp_path / "trustfix.pth"):
        assert not bootstrap.writable_target(str(path)), path
