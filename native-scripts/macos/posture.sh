#!/bin/sh
# Vigil macOS posture probe. Prints ONE JSON object on stdout and always exits 0: a tool that is missing or
# refuses (no admin) yields null for its field, and the TypeScript side decides what that means.
# Plists are emitted as XML (plutil -convert xml1 / defaults export), never as JSON, because plutil's JSON
# conversion fails on <date> and <data> values; src/posture/darwin/plist.ts parses them.
# Text-only tools (fdesetup, spctl, csrutil, socketfilterfw, profiles, sysadminctl) are embedded verbatim and
# parsed in src/posture/darwin/text.ts against fixtures. Contract: DARWIN_POSTURE_KEYS in src/posture/darwin/probe.ts.
# Read-only: no command here changes any setting, and none needs root.

PATH=/usr/bin:/bin:/usr/sbin:/sbin:/usr/libexec
export PATH
LC_ALL=C
export LC_ALL

# $1 as a JSON string literal, or null when it is empty.
json_str() {
  if [ -z "$1" ]; then printf 'null'; return; fi
  printf '%s' "$1" | awk 'BEGIN { ORS = ""; printf "\"" }
    {
      gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r")
      gsub(/[\001-\010\013\014\016-\037]/, "")
      if (NR > 1) printf "\\n"
      printf "%s", $0
    }
    END { printf "\"" }'
}

# Output of a command (stdout and stderr: several of these tools report on stderr), or empty when it is missing.
capture() {
  command -v "$1" >/dev/null 2>&1 || return 0
  "$@" 2>&1
}

# A plist file as XML, or empty when it does not exist or is unreadable.
plist_xml() {
  [ -r "$1" ] || return 0
  plutil -convert xml1 -o - "$1" 2>/dev/null
}

# A preferences domain of the current user as XML; "-currentHost" reads the ByHost variant.
defaults_xml() {
  command -v defaults >/dev/null 2>&1 || return 0
  defaults "$@" - 2>/dev/null
}

user=$(id -un 2>/dev/null)
managed='/Library/Managed Preferences'
sw_product=$(capture sw_vers -productVersion)
sw_build=$(capture sw_vers -buildVersion)
fw=/usr/libexec/ApplicationFirewall/socketfilterfw

printf '{'
printf '"probeVersion":1'
printf ',"productVersion":%s' "$(json_str "$sw_product")"
printf ',"buildVersion":%s' "$(json_str "$sw_build")"
printf ',"fdesetupStatus":%s' "$(json_str "$(capture fdesetup status)")"
printf ',"firewallGlobalState":%s' "$(json_str "$(capture "$fw" --getglobalstate)")"
printf ',"firewallStealthMode":%s' "$(json_str "$(capture "$fw" --getstealthmode)")"
printf ',"firewallManaged":%s' "$(json_str "$(plist_xml "$managed/com.apple.security.firewall.plist")")"
printf ',"spctlStatus":%s' "$(json_str "$(capture spctl --status)")"
printf ',"csrutilStatus":%s' "$(json_str "$(capture csrutil status)")"
printf ',"screenLockStatus":%s' "$(json_str "$(capture sysadminctl -screenLock status)")"
printf ',"screensaverByHost":%s' "$(json_str "$(defaults_xml -currentHost export com.apple.screensaver)")"
printf ',"screensaverManaged":%s' "$(json_str "$(plist_xml "$managed/com.apple.screensaver.plist")")"
printf ',"screensaverManagedUser":%s' "$(json_str "$(plist_xml "$managed/$user/com.apple.screensaver.plist")")"
printf ',"softwareUpdate":%s' "$(json_str "$(plist_xml /Library/Preferences/com.apple.SoftwareUpdate.plist)")"
printf ',"softwareUpdateManaged":%s' "$(json_str "$(plist_xml "$managed/com.apple.SoftwareUpdate.plist")")"
printf ',"xprotect":%s' "$(json_str "$(plist_xml /Library/Apple/System/Library/CoreServices/XProtect.bundle/Contents/Info.plist)")"
# macOS 15 scans with the copy in /var/protected/xprotect, which it updates on its own (also over iCloud); the
# CoreServices copy above is only its fallback and can lag behind.
printf ',"xprotectProtected":%s' "$(json_str "$(plist_xml /private/var/protected/xprotect/XProtect.bundle/Contents/Info.plist)")"
printf ',"xprotectRemediator":%s' "$(json_str "$(plist_xml /Library/Apple/System/Library/CoreServices/XProtect.app/Contents/Info.plist)")"
printf ',"mrt":%s' "$(json_str "$(plist_xml /Library/Apple/System/Library/CoreServices/MRT.app/Contents/Info.plist)")"
printf ',"processes":%s' "$(json_str "$(capture ps -axco comm=)")"
printf ',"profilesEnrollment":%s' "$(json_str "$(capture profiles status -type enrollment)")"
printf ',"sshdLaunchd":%s' "$(json_str "$(capture launchctl print-disabled system | grep -F 'com.openssh.sshd')")"
printf ',"tcpListeners":%s' "$(json_str "$(capture netstat -anv -p tcp | grep -F LISTEN)")"
printf ',"loginwindow":%s' "$(json_str "$(plist_xml /Library/Preferences/com.apple.loginwindow.plist)")"
printf ',"loginwindowManaged":%s' "$(json_str "$(plist_xml "$managed/com.apple.loginwindow.plist")")"
printf '}\n'
