# Vigil Windows device-facts probe: serial, model and hardware UUID from CIM. Prints ONE compressed JSON object.
# Contract: WIN32_DEVICE_KEYS in src/posture/win32/probe.ts. Windows PowerShell 5.1 compatible.

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Redirected output would otherwise use the OEM code page, garbling non-ASCII names for the UTF-8 reader.
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8

function Get-First([string]$Class, [string[]]$Properties) {
  try { return Get-CimInstance -ClassName $Class | Select-Object -First 1 -Property $Properties } catch { return $null }
}

$bios = Get-First 'Win32_BIOS' @('SerialNumber')
$product = Get-First 'Win32_ComputerSystemProduct' @('UUID', 'Vendor', 'Name')
$system = Get-First 'Win32_ComputerSystem' @('Manufacturer', 'Model')
$os = Get-First 'Win32_OperatingSystem' @('Caption', 'Version', 'BuildNumber')

[ordered]@{
  probeVersion = 1
  SerialNumber = if ($bios) { $bios.SerialNumber } else { $null }
  UUID = if ($product) { $product.UUID } else { $null }
  Manufacturer = if ($system) { $system.Manufacturer } else { $null }
  Model = if ($system) { $system.Model } else { $null }
  Caption = if ($os) { $os.Caption } else { $null }
  Version = if ($os) { $os.Version } else { $null }
  BuildNumber = if ($os) { $os.BuildNumber } else { $null }
} | ConvertTo-Json -Depth 4 -Compress
