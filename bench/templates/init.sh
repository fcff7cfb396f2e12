#!/bin/sh
# benchmark app init script: start | stop | restart | status
UNIT={{.Unit}}
PORT={{.Port}}
ROOT=/var/webapps/$UNIT
CURRENT={{.Current}}
. /run/fleet/host
PIDFILE=$ROOT/app.pid
LOG=$ROOT/app.log
running() {
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  [ -r "/proc/$pid/stat" ] || return 1
  # a zombie waiting for its reaper counts as stopped
  ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat"
}
answers() {
  "$CURRENT/env/bin/python" -c "import urllib.request; urllib.request.urlopen('http://$addr:$PORT/version', timeout=1)" 2>/dev/null
}
start() {
  cd "$CURRENT" || { echo "no current release" >&2; exit 1; }
  setsid env/bin/python app.py "$addr" "$PORT" >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  i=0
  while [ $i -lt 100 ]; do
    answers && return 0
    running || { echo "$UNIT did not start:" >&2; tail -n 3 "$LOG" >&2; exit 1; }
    sleep 0.1; i=$((i+1))
  done
  echo "$UNIT does not answer on $addr:$PORT" >&2; exit 1
}
stop() {
  if running; then
    kill "$(cat "$PIDFILE")"
    i=0
    while running && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    running && kill -9 "$(cat "$PIDFILE")"
  fi
  rm -f "$PIDFILE"
}
case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) running ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
