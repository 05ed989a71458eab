"""The OS proxy readers (PAC / WPAD, manual proxies) and the WSL check, over recorded outputs in data/pac/."""
import pytest

from unit_helpers import DATA, bootstrap

PAC = DATA / "pac"
PAC_URL = "http://pac.corp.example.com/proxy.pac"
PROXY = "proxy.corp.example.com:8080"
NOTHING = {"pac": None, "proxy": None, "auto_detect": None}


def recorded(name):
    # newline="" keeps reg.exe's CRLF as recorded (the parser must cope with it)
    with open(str(PAC / name), newline="", encoding="utf-8") as f:
        return f.read()


def test_the_windows_records_keep_crlf():
    assert "\r\n" in recorded("windows-reg-query-internet-settings-pac.txt")


@pytest.mark.parametrize("name, expected", [
    ("windows-reg-query-internet-settings-pac.txt", {"pac": PAC_URL, "proxy": None, "auto_detect": None}),
    ("windows-reg-query-internet-settings-manual.txt", {"pac": None, "proxy": PROXY, "auto_detect": None}),
    ("windows-reg-query-internet-settings-none.txt", NOTHING),
])
def test_reg_query_internet_settings(name, expected):
    assert bootstrap.parse_reg_internet_settings(recorded(name)) == expected
    assert bootstrap.parse_reg_internet_settings(recorded(name).replace("\r\n", "\n")) == expected


def reg_lines(*values):
    head = "\r\nHKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\r\n"
    return head + "".join("    {}    {}    {}\r\n".format(*v) for v in values) + "\r\n"


@pytest.mark.parametrize("server, expected", [
    ("http=a.example:1;https=b.example:2;ftp=c.example:3", "b.example:2"),
    ("https=b.example:2", "b.example:2"),
    ("http=a.example:1;ftp=c.example:3", None),          # no https entry: WinINet goes direct for https
    ("http://proxy.example:3128/", "proxy.example:3128"),
    ("proxy.example:3128", "proxy.example:3128"),
])
def test_reg_proxy_server_forms(server, expected):
    text = reg_lines(("ProxyEnable", "REG_DWORD", "0x1"), ("ProxyServer", "REG_SZ", server))
    assert bootstrap.parse_reg_internet_settings(text)["proxy"] == expected


def test_reg_proxy_server_is_ignored_while_proxy_enable_is_off():
    text = reg_lines(("ProxyEnable", "REG_DWORD", "0x0"), ("ProxyServer", "REG_SZ", PROXY))
    assert bootstrap.parse_reg_internet_settings(text) == NOTHING


def test_reg_auto_detect_value_when_present():
    assert bootstrap.parse_reg_internet_settings(reg_lines(("AutoDetect", "REG_DWORD", "0x1")))["auto_detect"] is True
    assert bootstrap.parse_reg_internet_settings(reg_lines(("AutoDetect", "REG_DWORD", "0x0")))["auto_detect"] is False


@pytest.mark.parametrize("name, expected", [
    ("macos-scutil-proxy-pac.txt", {"pac": PAC_URL, "proxy": None, "auto_detect": None}),
    ("macos-scutil-proxy-manual.txt", {"pac": None, "proxy": PROXY, "auto_detect": None}),
    ("macos-scutil-proxy-none.txt", NOTHING),
])
def test_scutil_proxy(name, expected):
    assert bootstrap.parse_scutil_proxy(recorded(name)) == expected


def test_scutil_takes_the_top_level_keys_only():
    text = recorded("macos-scutil-proxy-none.txt").replace(
        "      FTPPassive : 1\n", "      FTPPassive : 1\n      HTTPSEnable : 1\n      HTTPSProxy : scoped.example\n"
        "      ProxyAutoDiscoveryEnable : 1\n", 1)
    assert "scoped.example" in text
    assert bootstrap.parse_scutil_proxy(text) == NOTHING


def test_scutil_auto_discovery():
    text = recorded("macos-scutil-proxy-none.txt").replace(
        "  SOCKSEnable : 0\n", "  ProxyAutoDiscoveryEnable : 1\n  SOCKSEnable : 0\n", 1)
    assert bootstrap.parse_scutil_proxy(text) == {"pac": None, "proxy": None, "auto_detect": True}


G = {
    "mode-auto": "gnome-gsettings-mode-auto.txt", "mode-manual": "gnome-gsettings-mode-manual.txt",
    "mode-none": "gnome-gsettings-mode-none.txt", "url": "gnome-gsettings-autoconfig-url.txt",
    "url-empty": "gnome-gsettings-autoconfig-url-empty.txt", "host": "gnome-gsettings-https-host.txt",
    "port": "gnome-gsettings-https-port.txt",
}


@pytest.mark.parametrize("mode, url, expected", [
    ("mode-auto", "url", {"pac": PAC_URL, "proxy": None, "auto_detect": False}),
    ("mode-auto", "url-empty", {"pac": None, "proxy": None, "auto_detect": True}),     # WPAD
    ("mode-manual", "url-empty", {"pac": None, "proxy": PROXY, "auto_detect": False}),
    ("mode-none", "url", {"pac": None, "proxy": None, "auto_detect": False}),
])
def test_gsettings(mode, url, expected):
    got = bootstrap.parse_gsettings(recorded(G[mode]), recorded(G[url]), recorded(G["host"]), recorded(G["port"]))
    assert got == expected


def test_gsettings_manual_without_an_https_host_is_no_proxy():
    assert bootstrap.parse_gsettings("'manual'\n", "''\n", "''\n", "0\n")["proxy"] is None
    assert bootstrap.parse_gsettings(None, None, None, None) == NOTHING


# --- system_proxy_settings with a fake run answering from the records --------------------------------

GS = ["gsettings", "get", "org.gnome.system.proxy"]
GS_HTTPS = ["gsettings", "get", "org.gnome.system.proxy.https"]


def fake_run(answers):
    """run(cmd) -> (0, recorded output) for the commands in answers; a missing tool for the rest."""
    calls = []

    def run(cmd):
        calls.append(list(cmd))
        name = answers.get(tuple(cmd))
        if name is None:
            raise OSError(2, "No such file or directory")
        return 0, recorded(name)
    run.calls = calls
    return run


def failing_run(cmd):
    return 1, "ERROR: The system was unable to find the specified registry key or value.\n"


REG = ("reg", "query", bootstrap.REG_INTERNET_SETTINGS)
SCUTIL = ("scutil", "--proxy")


@pytest.mark.parametrize("platform, answers, expected", [
    ("win32", {REG: "windows-reg-query-internet-settings-pac.txt"},
     {"source": "Windows Internet Settings", "pac": PAC_URL, "proxy": None, "auto_detect": None}),
    ("win32", {REG: "windows-reg-query-internet-settings-manual.txt"},
     {"source": "Windows Internet Settings", "pac": None, "proxy": PROXY, "auto_detect": None}),
    ("darwin", {SCUTIL: "macos-scutil-proxy-pac.txt"},
     {"source": "macOS network settings (scutil --proxy)", "pac": PAC_URL, "proxy": None, "auto_detect": None}),
    ("darwin", {SCUTIL: "macos-scutil-proxy-none.txt"},
     {"source": "macOS network settings (scutil --proxy)", "pac": None, "proxy": None, "auto_detect": None}),
    ("linux", {tuple(GS + ["mode"]): G["mode-auto"], tuple(GS + ["autoconfig-url"]): G["url"]},
     {"source": "GNOME proxy settings", "pac": PAC_URL, "proxy": None, "auto_detect": False}),
    ("linux", {tuple(GS + ["mode"]): G["mode-manual"], tuple(GS_HTTPS + ["host"]): G["host"],
               tuple(GS_HTTPS + ["port"]): G["port"]},
     {"source": "GNOME proxy settings", "pac": None, "proxy": PROXY, "auto_detect": False}),
])
def test_system_proxy_settings_from_the_records(platform, answers, expected):
    run = fake_run(answers)
    assert bootstrap.system_proxy_settings(platform, run, {"XDG_CURRENT_DESKTOP": "ubuntu:GNOME"}) == expected
    assert run.calls and all(tuple(c) in answers for c in run.calls)


def test_gsettings_is_read_in_a_desktop_session_only():
    run = fake_run({tuple(GS + ["mode"]): G["mode-auto"], tuple(GS + ["autoconfig-url"]): G["url-empty"]})
    desktop = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}
    assert bootstrap.system_proxy_settings("linux", run, desktop) == {
        "source": "GNOME proxy settings", "pac": None, "proxy": None, "auto_detect": True}
    asked = fake_run({tuple(GS + ["mode"]): G["mode-auto"]})
    assert bootstrap.system_proxy_settings("linux", asked, {}) is None and asked.calls == []    # ssh, a service, CI


@pytest.mark.parametrize("platform", ["win32", "darwin", "linux"])
def test_system_proxy_settings_is_none_when_the_tool_fails_or_is_missing(platform):
    assert bootstrap.system_proxy_settings(platform, failing_run, {"XDG_CURRENT_DESKTOP": "GNOME"}) is None
    assert bootstrap.system_proxy_settings(platform, fake_run({}), {"XDG_CURRENT_DESKTOP": "GNOME"}) is None


def test_system_proxy_settings_is_none_on_other_platforms():
    assert bootstrap.system_proxy_settings("freebsd13", fake_run({}), {}) is None


# --- advice -------------------------------------------------------------------------------------------

def settings(source, name):
    parse = (bootstrap.parse_reg_internet_settings if source == bootstrap.SOURCE_WINDOWS
             else bootstrap.parse_scutil_proxy)
    result = {"source": source}
    result.update(parse(recorded(name)))
    return result


def test_pac_advice_windows():
    cause, fix = bootstrap.pac_advice(
        settings(bootstrap.SOURCE_WINDOWS, "windows-reg-query-internet-settings-pac.txt"), {})
    assert cause == ("this computer finds its proxy through a PAC file (http://pac.corp.example.com/proxy.pac), "
                     "which pip does not read (pip #6911)")
    assert fix == ("open http://pac.corp.example.com/proxy.pac in a browser (or with curl) and find the PROXY host:port that FindProxyForURL "
                   "returns for pypi.org; then set HTTPS_PROXY=http://host:port and HTTP_PROXY the same "
                   "(netsh winhttp show proxy may name it too)")
    assert len(fix) <= 300


def test_pac_advice_macos_has_no_netsh():
    cause, fix = bootstrap.pac_advice(settings(bootstrap.SOURCE_MACOS, "macos-scutil-proxy-pac.txt"),
                                      {"PATH": "/usr/bin"})
    assert "PAC file (http://pac.corp.example.com/proxy.pac)" in cause and "netsh" not in fix
    assert fix.startswith("open http://pac.corp.example.com/proxy.pac in a browser") and len(fix) <= 300


def test_wpad_advice():
    got = bootstrap.parse_gsettings(recorded(G["mode-auto"]), recorded(G["url-empty"]), "", "")
    got["source"] = bootstrap.SOURCE_GNOME
    cause, fix = bootstrap.pac_advice(got, {})
    assert cause == "this computer finds its proxy by WPAD auto-detection, which pip does not read (pip #6911)"
    assert fix.startswith("open the WPAD file (often http://wpad/wpad.dat) in a browser (or with curl)")
    assert len(fix) <= 300


@pytest.mark.parametrize("env", [{"HTTPS_PROXY": "http://proxy.corp.example.com:8080"},
                                 {"https_proxy": "http://proxy.corp.example.com:8080"}])
def test_https_proxy_set_suppresses_the_advice(env):
    for source, name in [(bootstrap.SOURCE_WINDOWS, "windows-reg-query-internet-settings-pac.txt"),
                         (bootstrap.SOURCE_WINDOWS, "windows-reg-query-internet-settings-manual.txt"),
                         (bootstrap.SOURCE_MACOS, "macos-scutil-proxy-pac.txt"),
                         (bootstrap.SOURCE_MACOS, "macos-scutil-proxy-manual.txt")]:
        assert bootstrap.pac_advice(settings(source, name), env) is None


def test_an_empty_https_proxy_does_not_suppress_it():
    assert bootstrap.pac_advice(settings(bootstrap.SOURCE_MACOS, "macos-scutil-proxy-pac.txt"), {"HTTPS_PROXY": ""})


@pytest.mark.parametrize("source, name", [(bootstrap.SOURCE_WINDOWS, "windows-reg-query-internet-settings-manual.txt"),
                                          (bootstrap.SOURCE_MACOS, "macos-scutil-proxy-manual.txt")])
def test_manual_proxy_advice(source, name):
    cause, fix = bootstrap.pac_advice(settings(source, name), {"HTTP_PROXY": "http://other:1"})
    assert cause == ("the OS settings name the proxy proxy.corp.example.com:8080, but HTTPS_PROXY is not set, "
                     "so pip connects directly")
    assert fix == ("set HTTPS_PROXY=http://proxy.corp.example.com:8080 (Windows: setx HTTPS_PROXY "
                   "http://proxy.corp.example.com:8080, then open a new terminal)")


@pytest.mark.parametrize("source, name", [(bootstrap.SOURCE_WINDOWS, "windows-reg-query-internet-settings-none.txt"),
                                          (bootstrap.SOURCE_MACOS, "macos-scutil-proxy-none.txt")])
def test_no_proxy_configured_gives_no_advice(source, name):
    assert bootstrap.pac_advice(settings(source, name), {}) is None


def test_gnome_none_and_no_settings_give_no_advice():
    got = bootstrap.parse_gsettings(recorded(G["mode-none"]), recorded(G["url"]), recorded(G["host"]),
                                    recorded(G["port"]))
    got["source"] = bootstrap.SOURCE_GNOME
    assert bootstrap.pac_advice(got, {}) is None
    assert bootstrap.pac_advice(None, {}) is None


@pytest.mark.parametrize("name", ["wsl1-proc-version.txt", "wsl2-proc-version.txt"])
def test_wsl_is_detected(name):
    cause, fix = bootstrap.wsl_advice(recorded(name))
    assert cause == ("this is Linux under Windows (WSL), whose trust store lacks the company root CA that "
                     "Windows trusts")
    assert fix == ("in PowerShell: Get-ChildItem Cert:\\LocalMachine\\Root | Where-Object Subject -like "
                   "'*<company>*' | Select-Object -First 1 | Export-Certificate -FilePath "
                   "C:\\Users\\Public\\corp-root.cer (or export it in certmgr.msc); then in WSL: python3 bootstrap.py --ca-file /mnt/c/Users/Public/corp-root.cer")
    assert len(fix) <= 300


def test_wsl_names_the_ca_when_known():
    fix = bootstrap.wsl_advice(recorded("wsl2-proc-version.txt"), "Example Corp Interception")[1]
    assert "-like '*Example Corp Interception*'" in fix


def test_plain_linux_is_not_wsl():
    assert bootstrap.wsl_advice(recorded("linux-proc-version.txt")) is None
    assert bootstrap.wsl_advice("") is None and bootstrap.wsl_advice(None) is None


# --- what doctor makes of them (bootstrap's check_system, with the recorded outputs as the tools' answers) ---

GSETTINGS_AUTO = {("gsettings", "get", "org.gnome.system.proxy", "mode"): "'auto'\n",
                  ("gsettings", "get", "org.gnome.system.proxy", "autoconfig-url"): "'{}'\n".format(PAC_URL)}


def doctor_system(monkeypatch, answers, environ, proc_version="Linux version 6.1.0 (gcc) #1 SMP Debian\n"):
    """check_system on Linux with the tools answering from answers (others missing); its report and advice."""
    def tool(cmd):
        if tuple(cmd) not in answers:
            raise bootstrap.Failure("could not run {}: No such file or directory.".format(cmd[0]))
        return 0, answers[tuple(cmd)]
    monkeypatch.setattr(bootstrap, "tool_output", tool)
    monkeypatch.setattr(bootstrap.sys, "platform", "linux")
    monkeypatch.setattr(bootstrap.OS, "proc_version", staticmethod(lambda: proc_version))
    for var in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CURRENT_DESKTOP", "ubuntu:GNOME")          # a desktop session, where GNOME is read
    for var, value in environ.items():
        monkeypatch.setenv(var, value)
    report = bootstrap.Report(bootstrap.UI(json_mode=True))
    return report, bootstrap.check_system(report)


def test_doctor_names_a_pac_file_pip_does_not_read(monkeypatch):
    report, advice = doctor_system(monkeypatch, GSETTINGS_AUTO, {})
    assert advice[0] == "this computer finds its proxy through a PAC file ({}), which pip does not read " \
                        "(pip #6911)".format(PAC_URL)
    assert [(c["name"], c["status"]) for c in report.checks] == [("proxy", "warning")]
    assert report.checks[0]["text"].startswith("GNOME proxy settings: this computer finds its proxy through a PAC")


def test_doctor_with_https_proxy_set_only_reports_the_pac(monkeypatch):
    report, advice = doctor_system(monkeypatch, GSETTINGS_AUTO, {"HTTPS_PROXY": "http://" + PROXY})
    assert advice is None
    assert [(c["name"], c["status"]) for c in report.checks] == [("proxy", "ok")]
    assert PAC_URL in report.checks[0]["text"] and "HTTPS_PROXY is set" in report.checks[0]["text"]


def test_doctor_without_proxy_tools_says_nothing(monkeypatch):
    report, advice = doctor_system(monkeypatch, {}, {})
    assert advice is None and report.checks == []


@pytest.mark.parametrize("name", ["wsl1", "wsl2"])
def test_doctor_says_wsl_and_names_the_windows_export(monkeypatch, name):
    text = recorded(next(p.name for p in PAC.iterdir() if name in p.name and "version" in p.name))
    report, _ = doctor_system(monkeypatch, {}, {}, proc_version=text)
    assert [(c["name"], c["status"]) for c in report.checks] == [("wsl", "ok")]
    cause, fix = bootstrap.wsl_advice(text, "Example Corp Root")
    assert "Where-Object Subject -like '*Example Corp Root*'" in fix and "--ca-file /mnt/c/Users/Public/corp-root.cer" in fix
