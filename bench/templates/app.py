import http.server, os, subprocess, sys
import magefab_testdep

here = os.path.dirname(os.path.abspath(__file__))
# Capistrano exports the tree without .git and writes the commit to REVISION.
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
    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
