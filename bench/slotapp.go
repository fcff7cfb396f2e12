package main

import "fmt"

// slotAppFile is the slot app's file in the app's repository.
const slotAppFile = "slot_app.py"

// slotAppPy is the benchmark app as a slot: AppPy's answers (/version is
// the commit), served on the unix socket given as first argument and, with
// an address and a port after it, also on that TCP port with SO_REUSEPORT,
// beside the other slots of the host. On SIGTERM it drains: it stops
// accepting, takes what is already queued on its listeners, closes them,
// finishes the requests in flight and exits.
const slotAppPy = `import http.server, os, signal, socket, socketserver, subprocess, sys, threading, selectors
import magefab_testdep

here = os.path.dirname(os.path.abspath(__file__))
if os.path.exists(os.path.join(here, "FAIL_START")):
    sys.exit("FAIL_START present: refusing to start")
revision = os.path.join(here, "REVISION")
if os.path.exists(revision):
    with open(revision) as f:
        sha = f.read().strip()
else:
    sha = subprocess.check_output(["git", "-c", "safe.directory=*", "rev-parse", "HEAD"], cwd=here).decode().strip()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (sha + "\n").encode() if self.path == "/version" else b"hello from " + magefab_testdep.NAME.encode() + b"\n"
        self.send_response(200 if self.path in ("/", "/version") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def address_string(self):
        return "-"
    def log_message(self, *args):
        pass

class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = False
    request_queue_size = 128
    def server_bind(self):
        try:
            os.unlink(self.server_address)
        except FileNotFoundError:
            pass
        socketserver.UnixStreamServer.server_bind(self)
        os.chmod(self.server_address, 0o666)

class PortServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = False
    allow_reuse_address = True
    request_queue_size = 128
    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        http.server.HTTPServer.server_bind(self)

servers = [UnixServer(sys.argv[1], Handler)]
if len(sys.argv) > 3:
    servers.append(PortServer((sys.argv[2], int(sys.argv[3])), Handler))

stopping = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stopping.set())
signal.signal(signal.SIGINT, lambda *a: stopping.set())

sel = selectors.DefaultSelector()
for s in servers:
    s.socket.setblocking(False)
    sel.register(s.socket, selectors.EVENT_READ, s)

def accept(s):
    try:
        conn, addr = s.socket.accept()
    except (BlockingIOError, InterruptedError):
        return False
    conn.setblocking(True)
    s.process_request(conn, addr)
    return True

while not stopping.is_set():
    for key, _ in sel.select(0.05):
        accept(key.data)
# drain: take what is queued, close the listeners, finish what runs
for s in servers:
    while accept(s):
        pass
    s.socket.close()
try:
    os.unlink(sys.argv[1])
except FileNotFoundError:
    pass
for s in servers:
    s.server_close()  # joins the request threads
`

// slotInitScript returns /etc/init.d/<unit>-slot for the slot app: start
// DIR SLOT runs slot_app.py of release dir DIR on DIR/run/SLOT.sock (and on
// the host's address and port, when port > 0), with its pid and log in
// DIR/run/SLOT.{pid,log}, and returns once the socket answers /version
// (or, when the process died, prints the log's tail and exits 1). stop DIR
// SLOT sends TERM and waits for the exit, up to $MAGEFAB_DRAIN_TIMEOUT
// seconds (30 if unset), then kills.
func slotInitScript(unit string, port int) string {
	return fmt.Sprintf(slotInit, unit, port, slotAppFile)
}

const slotInit = `#!/bin/sh
# slot of %[1]s: start|stop DIR SLOT
PORT=%[2]d
. /run/fleet/host
[ $# -eq 3 ] || { echo "usage: $0 start|stop DIR SLOT" >&2; exit 2; }
DIR=$2
SLOT=$3
RUN=$DIR/run
PIDFILE=$RUN/$SLOT.pid
LOG=$RUN/$SLOT.log
SOCK=$RUN/$SLOT.sock
running() {
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  [ -r "/proc/$pid/stat" ] || return 1
  # the pid may be another process's by now: only the slot's is ours
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$SOCK" || return 1
  ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat"
}
answers() {
  "$DIR/env/bin/python" - "$SOCK" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(1)
s.connect(sys.argv[1])
s.sendall(b"GET /version HTTP/1.0\r\n\r\n")
sys.exit(0 if s.recv(64).startswith(b"HTTP/1.0 200") else 1)
EOF
}
start() {
  if running; then echo "slot $SLOT is already running"; return 0; fi
  mkdir -p "$RUN"
  cd "$DIR" || exit 1
  if [ "$PORT" -gt 0 ]; then
    setsid env/bin/python %[3]s "$SOCK" "$addr" "$PORT" >>"$LOG" 2>&1 </dev/null &
  else
    setsid env/bin/python %[3]s "$SOCK" >>"$LOG" 2>&1 </dev/null &
  fi
  child=$!
  echo "$child" >"$PIDFILE"
  i=0
  while [ $i -lt 300 ]; do
    answers && return 0
    # the child started here (running would not know it until it execs)
    { kill -0 "$child" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$child/stat"; } ||
      { echo "slot $SLOT of $DIR did not start:" >&2; tail -n 20 "$LOG" >&2; exit 1; }
    sleep 0.1; i=$((i+1))
  done
  echo "slot $SLOT of $DIR does not answer on $SOCK" >&2; tail -n 20 "$LOG" >&2; exit 1
}
stop() {
  if running; then
    kill "$(cat "$PIDFILE")"
    i=0
    limit=$(( ${MAGEFAB_DRAIN_TIMEOUT:-30} * 10 ))
    while running && [ $i -lt $limit ]; do sleep 0.1; i=$((i+1)); done
    running && kill -9 "$(cat "$PIDFILE")"
  fi
  rm -f "$PIDFILE"
}
case "$1" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR SLOT" >&2; exit 2 ;;
esac
`

// slotUnitScript returns /etc/init.d/<unit> for a slot tool: stop drains
// every slot of the unit on the host (the benchmark's cleanup), status
// says whether one runs.
func slotUnitScript(unit string) string {
	return fmt.Sprintf(slotUnit, unit)
}

const slotUnit = `#!/bin/sh
# every slot of %[1]s on this host: stop | status
UNIT=%[1]s
ROOT=/var/webapps/$UNIT
case "$1" in
  stop)
    for p in "$ROOT"/releases/*/run/*.pid; do
      [ -f "$p" ] || continue
      MAGEFAB_DRAIN_TIMEOUT=5 /etc/init.d/$UNIT-slot stop "${p%%/run/*}" "$(basename "$p" .pid)"
    done ;;
  status)
    for p in "$ROOT"/releases/*/run/*.pid; do
      [ -f "$p" ] && [ -r "/proc/$(cat "$p")/stat" ] && exit 0
    done
    exit 1 ;;
  *) echo "usage: $0 stop|status" >&2; exit 2 ;;
esac
`
