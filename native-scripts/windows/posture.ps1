# Vigil Windows posture probe. Prints ONE compressed JSON object on stdout.
# Every value comes from CIM/WMI, cmdlets or the registry, never from localized text, so a German or Japanese
# Windows yields the same JSON; the one text tool (dsregcmd) prints fixed English keys and is parsed by key.
# Each section is isolated: one that fails (no admin, missing module, Server SKU without SecurityCenter2)
# records its error category instead of aborting the rest. The caller judges; this script only reads.
# Contract: WIN32_POSTURE_KEYS in src/posture/win32/probe.ts. Windows PowerShell 5.1 compatible.

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Redirected output would otherwise use the OEM code page, garbling non-ASCII names for the UTF-8 reader.
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8

# Runs a block; on failure returns the error's non-localized category (e.g. PermissionDenied) and HRESULT.
function Invoke-Section([scriptblock]$Block) {
  try {
    return @{ value = (& $Block); error = $null }
  } catch {
    return @{ value = $null; error = @{ category = [string]$_.CategoryInfo.Category; hresult = $_.Exception.HResult } }
  }
}

function Get-RegValues([string]$Path, [string[]]$Names) {
  $out = [ordered]@{}
  $item = Get-ItemProperty -Path $Path -ErrorAction SilentlyContinue
  foreach ($n in $Names) {
    if ($null -ne $item -and $null -ne $item.PSObject.Properties[$n]) { $out[$n] = $item.$n } else { $out[$n] = $null }
  }
  return $out
}

function ConvertTo-IsoDate($Value) {
  if ($null -eq $Value) { return $null }
  return ([datetime]$Value).ToUniversalTime().ToString('o')
}

$result = [ordered]@{ probeVersion = 1 }

$result.os = Invoke-Section {
  $os = Get-CimInstance -ClassName Win32_OperatingSystem
  $cv = Get-RegValues 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' @('DisplayVersion', 'UBR', 'EditionID', 'InstallationType')
  [ordered]@{
    Caption = $os.Caption; Version = $os.Version; BuildNumber = $os.BuildNumber; ProductType = $os.ProductType
    DisplayVersion = $cv.DisplayVersion; UBR = $cv.UBR; EditionID = $cv.EditionID; InstallationType = $cv.InstallationType
  }
}

# Win32_EncryptableVolume needs admin. Without it the Shell's BitLocker property still tells, per drive,
# whether protection is on (the value Explorer shows as a padlock), so a standard user gets an answer.
$result.bitlocker = Invoke-Section {
  Get-CimInstance -Namespace 'root\cimv2\Security\MicrosoftVolumeEncryption' -ClassName Win32_EncryptableVolume |
    ForEach-Object {
      $volume = $_
      # The ProtectionStatus property is cached and can say "on" for a volume that is no longer encrypted
      # (osquery/osquery#8931); the methods evaluate afresh, so their answers win when they succeed.
      $conversion = (Invoke-Section { Invoke-CimMethod -InputObject $volume -MethodName GetConversionStatus }).value
      $protection = (Invoke-Section { Invoke-CimMethod -InputObject $volume -MethodName GetProtectionStatus }).value
      [ordered]@{
        DeviceID = $volume.DeviceID; DriveLetter = $volume.DriveLetter; VolumeType = $volume.VolumeType
        ProtectionStatus = if ($null -ne $protection) { $protection.ProtectionStatus } else { $volume.ProtectionStatus }
        ConversionStatus = if ($null -ne $conversion) { $conversion.ConversionStatus } else { $volume.ConversionStatus }
        EncryptionPercentage = if ($null -ne $conversion) { $conversion.EncryptionPercentage } else { $null }
      }
    }
}
$result.bitlockerShell = Invoke-Section {
  $shell = New-Object -ComObject Shell.Application
  Get-CimInstance -ClassName Win32_LogicalDisk -Filter 'DriveType = 3' | ForEach-Object {
    [ordered]@{ DriveLetter = $_.DeviceID; BitLockerProtection = $shell.NameSpace($_.DeviceID + '\').Self.ExtendedProperty('System.Volume.BitLockerProtection') }
  }
}

$result.defender = Invoke-Section {
  $s = Get-MpComputerStatus
  [ordered]@{
    AMServiceEnabled = $s.AMServiceEnabled; AntivirusEnabled = $s.AntivirusEnabled; RealTimeProtectionEnabled = $s.RealTimeProtectionEnabled
    AMRunningMode = $s.AMRunningMode; AntivirusSignatureAge = $s.AntivirusSignatureAge
    AntivirusSignatureLastUpdated = (ConvertTo-IsoDate $s.AntivirusSignatureLastUpdated); IsTamperProtected = $s.IsTamperProtected
  }
}

# Not present on Server SKUs: an error there is expected and reported as such.
$result.antivirusProducts = Invoke-Section {
  Get-CimInstance -Namespace 'root\SecurityCenter2' -ClassName AntiVirusProduct |
    ForEach-Object { [ordered]@{ displayName = $_.displayName; productState = $_.productState; pathToSignedProductExe = $_.pathToSignedProductExe } }
}
$result.firewallProducts = Invoke-Section {
  Get-CimInstance -Namespace 'root\SecurityCenter2' -ClassName FirewallProduct |
    ForEach-Object { [ordered]@{ displayName = $_.displayName; productState = $_.productState; pathToSignedProductExe = $_.pathToSignedProductExe } }
}
$result.firewallProfiles = Invoke-Section {
  Get-NetFirewallProfile -PolicyStore ActiveStore |
    ForEach-Object { [ordered]@{ Name = [string]$_.Name; Enabled = [int]$_.Enabled } }
}

# Confirm-SecureBootUEFI needs admin; the registry value it mirrors is readable by everyone.
$result.secureBoot = Invoke-Section {
  $reg = Get-RegValues 'HKLM:\SYSTEM\CurrentControlSet\Control\SecureBoot\State' @('UEFISecureBootEnabled')
  $confirm = Invoke-Section { Confirm-SecureBootUEFI }
  [ordered]@{ UEFISecureBootEnabled = $reg.UEFISecureBootEnabled; confirmSecureBootUEFI = $confirm.value; confirmError = $confirm.error }
}

# Win32_Tpm needs admin; the TPM's ACPI device (MSFT0101 = TPM 2.0, PNP0C31 = TPM 1.2) is visible to everyone.
$result.tpm = Invoke-Section {
  $cim = Invoke-Section {
    Get-CimInstance -Namespace 'root\cimv2\Security\MicrosoftTpm' -ClassName Win32_Tpm |
      ForEach-Object { [ordered]@{ IsEnabled_InitialValue = $_.IsEnabled_InitialValue; IsActivated_InitialValue = $_.IsActivated_InitialValue; SpecVersion = $_.SpecVersion } }
  }
  $pnp = @(Get-CimInstance -ClassName Win32_PnPEntity -Filter "PNPClass = 'SecurityDevices'" |
    ForEach-Object { [ordered]@{ DeviceID = $_.DeviceID; Status = $_.Status } })
  [ordered]@{ win32Tpm = $cim.value; win32TpmError = $cim.error; securityDevices = $pnp }
}

$result.screenLock = Invoke-Section {
  $desktopNames = @('ScreenSaveActive', 'ScreenSaverIsSecure', 'ScreenSaveTimeOut')
  [ordered]@{
    machinePolicy = Get-RegValues 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System' @('InactivityTimeoutSecs')
    userPolicy = Get-RegValues 'HKCU:\Software\Policies\Microsoft\Windows\Control Panel\Desktop' $desktopNames
    user = Get-RegValues 'HKCU:\Control Panel\Desktop' $desktopNames
  }
}

$result.windowsUpdate = Invoke-Section {
  $svc = Get-CimInstance -ClassName Win32_Service -Filter "Name = 'wuauserv'"
  [ordered]@{
    policy = Get-RegValues 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate\AU' @('NoAutoUpdate', 'AUOptions')
    serviceStartMode = $svc.StartMode
  }
}

$result.hotfixes = Invoke-Section {
  Get-HotFix | Where-Object { $null -ne $_.InstalledOn } | Sort-Object InstalledOn -Descending | Select-Object -First 5 |
    ForEach-Object { [ordered]@{ HotFixID = $_.HotFixID; Description = $_.Description; InstalledOn = (ConvertTo-IsoDate $_.InstalledOn) } }
}

$result.uac = Invoke-Section {
  Get-RegValues 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System' @('EnableLUA', 'ConsentPromptBehaviorAdmin', 'PromptOnSecureDesktop')
}

# SystemStartOptions is the kernel's boot command line (TESTSIGNING, DEBUG, NOINTEGRITYCHECKS), readable by users.
$result.bootOptions = Invoke-Section {
  (Get-RegValues 'HKLM:\SYSTEM\CurrentControlSet\Control' @('SystemStartOptions')).SystemStartOptions
}

$result.join = Invoke-Section {
  $cs = Get-CimInstance -ClassName Win32_ComputerSystem
  $dsreg = Join-Path $env:SystemRoot 'System32\dsregcmd.exe'
  # The lines are joined as printed; Out-String would route them through the formatting system.
  $text = if (Test-Path $dsreg) { (& $dsreg /status) -join "`n" } else { $null }
  [ordered]@{ PartOfDomain = $cs.PartOfDomain; dsregcmd = $text }
}

# The built-in Guest account is found by its well-known RID 501: its name is localized (Gast, Invité).
$result.guest = Invoke-Section {
  Get-CimInstance -ClassName Win32_UserAccount -Filter "LocalAccount = True AND SID LIKE '%-501'" |
    ForEach-Object { [ordered]@{ SID = $_.SID; Disabled = $_.Disabled } }
}

$result.processes = Invoke-Section { @(Get-Process | ForEach-Object { $_.ProcessName } | Sort-Object -Unique) }

$result | ConvertTo-Json -Depth 6 -Compress
