# trustfix: Intune Remediations - DETECTION script.
# Compliant (exit 0) when `bootstrap.py doctor --json` exits 0: pip of this Python reaches the index with
# verified TLS. Otherwise exit 1, and Intune runs remediate.ps1. doctor reads only; it changes nothing.
#
# Use: Intune > Devices > Scripts and remediations > Create: detection = this file, remediation =
# remediate.ps1; "Run this script using the logged-on credentials": No (runs as SYSTEM, like remediate.ps1
# with --scope global); "Run script in 64-bit PowerShell": Yes. Deploy the bundle (the unpacked
# `build.py zip`) to $Bundle first, e.g. as a Win32 app. Set $Python to the interpreter to check.
# Intune shows the last line printed (doctor's verdict); the full JSON goes to the IME log folder.

$Bundle = "$env:ProgramData\trustfix\bundle"
$Python = "$env:ProgramFiles\Python312\python.exe"    # or "$env:SystemRoot\py.exe" with $PyArgs = @('-3')
$PyArgs = @()
$LogDir = "$env:ProgramData\Microsoft\IntuneManagementExtension\Logs"
$Log = Join-Path $LogDir 'trustfix-detect.log'

if (-not (Test-Path (Join-Path $Bundle 'bootstrap.py'))) {
    Write-Output "trustfix: no bootstrap.py in $Bundle; deploy the bundle first"
    exit 1
}
$out = & $Python @PyArgs (Join-Path $Bundle 'bootstrap.py') doctor --json | Out-String      # stdout only: one JSON document
$code = $LASTEXITCODE
Add-Content -Path $Log -Encoding UTF8 -Value ("{0} doctor exit code {1}`r`n{2}" -f (Get-Date -Format s), $code, $out)
try { $cause = ($out | ConvertFrom-Json).doctor.verdict.cause } catch { $cause = "doctor printed no JSON (exit code $code)" }
Write-Output "trustfix doctor: $cause"
if ($code -eq 0) { exit 0 } else { exit 1 }
