# slotcheck.py SOCKET PATH SECONDS: asks PATH over HTTP on the unix socket
# SOCKET until it answers with a status below 400, for up to SECONDS.
# Exits 0 once it did; else 1, printing the last reason.
import socket
import sys
import time

sock, path, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + limit
why = "no answer"
while True:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(max(1.0, min(5.0, deadline - time.monotonic())))
        s.connect(sock)
        s.sendall(("GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: magefab\r\n\r\n" % path).encode())
        data = b""
        while b"\r\n" not in data and len(data) < 8192:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        words = data.split(b"\r\n", 1)[0].split()
        if len(words) >= 2 and words[1].isdigit():
            code = int(words[1])
            if 200 <= code < 400:
                sys.exit(0)
            why = "HTTP %d" % code
        else:
            why = "no HTTP answer"
    except OSError as e:
        why = e.strerror or str(e)
    finally:
        s.close()
    if time.monotonic() >= deadline:
        print(why)
        sys.exit(1)
    time.sleep(0.1)
