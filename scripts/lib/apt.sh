#!/usr/bin/env bash
# Installs Debian packages the scripts need (PostgreSQL, chromium, wrk, python3-torch), as root or through sudo.
# Source this file, then call: apt_install PACKAGE...

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      printf '[apt] not root and no sudo: install %s with apt-get, then run this again\n' "$*" >&2; return 1
    fi
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}
