#!/usr/bin/env bash
# Debian's chromium for the browser tests and `bench.sh dashboard`: installed if missing, the way postgres.sh
# installs PostgreSQL (these machines cannot download Playwright's own browsers). Source this file, then call
# chromium_ensure; it exports TRAININGSERVICE_CHROMIUM with the executable's path.

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

chromium_log() { printf '[chromium] %s\n' "$*" >&2; }

chromium_find() {
  local candidate
  for candidate in "${TRAININGSERVICE_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then TRAININGSERVICE_CHROMIUM="$candidate"; return 0; fi
  done
  return 1
}

chromium_install() {
  chromium_log "chromium not found; installing Debian's chromium package (or set TRAININGSERVICE_CHROMIUM)"
  apt_install chromium
}

chromium_ensure() {
  chromium_find || { chromium_install && chromium_find; } || { chromium_log "could not find or install chromium"; return 1; }
  export TRAININGSERVICE_CHROMIUM
}
