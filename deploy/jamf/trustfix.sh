#!/bin/sh
# trustfix: Jamf Pro policy script. Runs the bundle's bootstrap.py with --json, logs the JSON document,
# and exits with bootstrap.py's own exit code (0 done or nothing to do, 1 failed, 2 bad usage or input,
# 3 configured but the final check against the index failed), so the policy shows as failed when it is.
#
# Deploy the bundle first (a package that puts the unpacked `build.py zip` in a folder, by default
# /Library/Application Support/trustfix/bundle), then add this script to a policy. Jamf passes
#   $1 mount point, $2 computer name, $3 user name (set by Jamf; $3 is used with scope "user", below)
#   $4 bundle folder holding bootstrap.py    default: /Library/Application Support/trustfix/bundle
#   $5 Python to fix                          default: /usr/bin/python3 (Xcode Command Line Tools)
#   $6 scope: global | user | site            default: global (every user's pip; the policy runs as root)
#        user: pip's configuration of the user $3 names; the script runs bootstrap.py as that user
#        (sudo -u), so the bundle folder must be readable by that user
#   $7 more bootstrap.py options, split on spaces, e.g. "--offline", "--ca-file /path/corp.pem" or "--tools uv,git"
#   $8 log file (appended to)                 default: /Library/Logs/trustfix.log (/var/log/... elsewhere)
# The policy log shows the JSON document and a last line: "trustfix: exit code N, changed: true|false".

bundle=${4:-"/Library/Application Support/trustfix/bundle"}
python=${5:-/usr/bin/python3}
scope=${6:-global}
extra=${7:-}
log=${8:-}
if [ -z "$log" ]; then
    if [ -d /Library/Logs ]; then log=/Library/Logs/trustfix.log; else log=/var/log/trustfix.log; fi
fi

say() { printf '%s\n' "$*"; printf '%s %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >>"$log" 2>/dev/null; }

if [ ! -f "$bundle/bootstrap.py" ]; then
    say "trustfix: no bootstrap.py in $bundle (parameter 4): deploy the bundle there first; exit code 2"
    exit 2
fi

run_as=
if [ "$scope" = user ] && [ "$(id -u)" = 0 ] && [ -n "$3" ] && [ "$3" != root ]; then
    run_as=$3
fi

cd "$bundle" || exit 2
out=$(mktemp "${TMPDIR:-/tmp}/trustfix-jamf.XXXXXX") || exit 1
err=$(mktemp "${TMPDIR:-/tmp}/trustfix-jamf.XXXXXX") || exit 1
# shellcheck disable=SC2086  # $extra is split on spaces on purpose
if [ -n "$run_as" ]; then
    sudo -H -u "$run_as" "$python" "$bundle/bootstrap.py" install --json --scope "$scope" $extra >"$out" 2>"$err"
else
    "$python" "$bundle/bootstrap.py" install --json --scope "$scope" $extra >"$out" 2>"$err"
fi
code=$?

changed=$(sed -n -e 's/^  "changed": true,*$/true/p' -e 's/^  "changed": false,*$/false/p' "$out" | head -n 1)
cat "$out"
cat "$err" >&2
{ printf '%s trustfix %s%s (scope %s, %s):\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$python" \
      "${run_as:+ as $run_as}" "$scope" "$bundle"; cat "$out" "$err"; } >>"$log" 2>/dev/null
rm -f "$out" "$err"
say "trustfix: exit code $code, changed: ${changed:-unknown}"
exit "$code"
