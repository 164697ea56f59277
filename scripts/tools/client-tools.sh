#!/usr/bin/env bash
# The S3 clients the compatibility tests run, as Debian ships them: the aws CLI, boto3 and rclone.
# Installs what is missing when it can (root with apt-get); otherwise names the command and fails, so a
# compatibility test never silently does not run.
set -euo pipefail

missing=()
[ -x /usr/bin/aws ] || missing+=(awscli)
[ -x /usr/bin/rclone ] || missing+=(rclone)
/usr/bin/python3 -c 'import boto3' 2>/dev/null || missing+=(python3-boto3)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "client-tools: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "client-tools: installing ${missing[*]} from Debian"
# Package lists may be absent on a fresh machine.
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/client-tools-install.log 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
