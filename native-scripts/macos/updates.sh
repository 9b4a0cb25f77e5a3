#!/bin/sh
# Vigil macOS pending-updates probe. Separate from posture.sh because `softwareupdate --list` contacts
# Apple's catalog and can take tens of seconds: the agent runs it rarely and caches the answer.
# Prints ONE JSON object; the text is parsed by parseSoftwareUpdateList in src/posture/darwin/text.ts.
# Contract: DARWIN_UPDATES_KEYS in src/posture/darwin/probe.ts.

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

if command -v softwareupdate >/dev/null 2>&1; then
  # stdout and stderr are kept apart: "No new software available." goes to stderr, the list to stdout.
  err_file=$(mktemp "${TMPDIR:-/tmp}/vigil-su.XXXXXX") || exit 1
  out=$(softwareupdate --list 2>"$err_file")
  code=$?
  err=$(cat "$err_file")
  rm -f "$err_file"
  printf '{"probeVersion":1,"exitCode":%d,"stdout":%s,"stderr":%s}\n' "$code" "$(json_str "$out")" "$(json_str "$err")"
else
  printf '{"probeVersion":1,"exitCode":null,"stdout":null,"stderr":null}\n'
fi
