#!/bin/sh
# Vigil macOS device-facts probe: serial, model and hardware UUID. system_profiler has a real JSON mode, so its
# output is embedded as-is; it takes a few hundred ms, and the agent caches it as a static fact.
# Contract: DARWIN_DEVICE_KEYS in src/posture/darwin/probe.ts.

PATH=/usr/bin:/bin:/usr/sbin:/sbin
export PATH
LC_ALL=C
export LC_ALL

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

hardware=
if command -v system_profiler >/dev/null 2>&1; then
  hardware=$(system_profiler -json SPHardwareDataType 2>/dev/null)
fi
[ -n "$hardware" ] || hardware=null

product=
build=
if command -v sw_vers >/dev/null 2>&1; then
  product=$(sw_vers -productVersion 2>/dev/null)
  build=$(sw_vers -buildVersion 2>/dev/null)
fi

printf '{"probeVersion":1,"productVersion":%s,"buildVersion":%s,"hardware":%s}\n' \
  "$(json_str "$product")" "$(json_str "$build")" "$hardware"
