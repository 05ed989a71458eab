# trustfix: Intune Remediations - REMEDIATION script (runs when detect.ps1 exits 1).
# Runs `bootstrap.py --json --scope global` (cert in %ProgramData%\pip\pip.ini, the bundle in
# %ProgramData%\trustfix: every user's pip) and exits with bootstrap.py's exit code: 0 done or nothing
# to do, 1 failed (nothing left half-changed), 2 bad usage or input, 3 configured but the final check
# against the index failed. The JSON document is appended to trustfix-remediate.log in the Intune
# Management Extension's log folder (collected by "Collect diagnostics"); Intune shows the last line.
#
# Use: with detect.ps1 (see there), as SYSTEM, 64-bit PowerShell. Set $Bundle and $Python as there.
# Undo on a device: & $Python "$Bundle\bootstrap.py" undo --json --scope global

$Bundle = "$env:ProgramData\trustfix\bundle"
$Python = "$env:ProgramFiles\Python312\python.exe"    # or "$env:SystemRoot\py.exe" with $PyArgs = @('-3')
$PyArgs = @()
$LogDir = "$env:ProgramData\Microsoft\IntuneManagementExtension\Logs"
$Log = Join-Path $LogDir 'trustfix-remediate.log'

if (-not (Test-Path (Join-Path $Bundle 'bootstrap.py'))) {
    Write-Output "trustfix: no bootstrap.py in $Bundle; deploy the bundle first"
    exit 2
}
Push-Location $Bundle
$out = & $Python @PyArgs (Join-Path $Bundle 'bootstrap.py') --json --scope global | Out-String      # stdout only: one JSON document
$code = $LASTEXITCODE
Pop-Location
Add-Content -Path $Log -Encoding UTF8 -Value ("{0} bootstrap.py exit code {1}`r`n{2}" -f (Get-Date -Format s), $code, $out)
try {
    $doc = $out | ConvertFrom-Json
    if ($doc.error) { $summary = $doc.error } else { $summary = "changed: $($doc.changed)" }
} catch { $summary = "bootstrap.py printed no JSON" }
Write-Output "trustfix: exit code $code, $summary"
exit $code
