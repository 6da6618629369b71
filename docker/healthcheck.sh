#!/bin/bash
# Docker HEALTHCHECK of a tiercache container without curl: GET /health over bash's /dev/tcp,
# healthy on a 200. The port is $PORT, else the role's default (auxiliary 3001, master/local 8000).
set -u
if [ -z "${PORT:-}" ]; then
  if tr '\0' ' ' </proc/1/cmdline 2>/dev/null | grep -qw auxiliary; then PORT=3001; else PORT=8000; fi
fi
exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
IFS= read -r -t 3 status <&3 || exit 1
case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) echo "health: ${status%$'\r'}"; exit 1 ;;
esac
