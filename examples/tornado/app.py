#!/usr/bin/env python3
"""hello: a Tornado app.

app.py ADDR PORT                  serves it on ADDR:PORT
app.py --unix SOCKET [ADDR PORT]  serves it as a slot: on the unix socket
                                  SOCKET and, given ADDR PORT, on that port
                                  shared with the other slots (SO_REUSEPORT)

On SIGTERM it drains: it stops accepting, finishes the requests in flight
and exits.
"""
import asyncio
import os
import signal
import subprocess
import sys

import tornado.httpserver
import tornado.netutil
import tornado.web

import settings

HERE = os.path.dirname(os.path.abspath(__file__))
SHA = subprocess.run(
    ["git", "-c", "safe.directory=*", "rev-parse", "HEAD"],
    cwd=HERE, capture_output=True, text=True, check=False,
).stdout.strip()


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        if settings.MAINTENANCE_MODE:
            self.set_status(503)
            self.write("hello is down for maintenance\n")
            return
        self.write("hello from Tornado (%s)\n" % SHA[:7])


class VersionHandler(tornado.web.RequestHandler):
    def get(self):
        self.write(SHA + "\n")


def make_app():
    return tornado.web.Application([(r"/", MainHandler), (r"/version", VersionHandler)])


async def serve(args):
    server = tornado.httpserver.HTTPServer(make_app())
    # A deep accept queue (Tornado's default is 128): a front server's
    # connect to a unix socket whose queue is full fails at once (502),
    # and a busy machine can keep the app from accepting for a moment.
    backlog = 1024
    if args[:1] == ["--unix"]:
        server.add_socket(tornado.netutil.bind_unix_socket(args[1], mode=0o666, backlog=backlog))
        args = args[2:]
        if args:
            server.add_sockets(tornado.netutil.bind_sockets(int(args[1]), address=args[0], reuse_port=True, backlog=backlog))
    else:
        server.add_sockets(tornado.netutil.bind_sockets(int(args[1]), address=args[0], backlog=backlog))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.stop()
    # Connections it accepted before it stopped accepting are answered:
    # each ends after its response (a client that keeps it alive, once
    # idle, is closed after 10 s). Closing them at once would cut a
    # request that was accepted but not yet read.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while server._connections and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await server.close_all_connections()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1:]))
