#!/usr/bin/env python3
"""hello: a Tornado app. app.py ADDR PORT serves it."""
import os
import subprocess
import sys

import tornado.ioloop
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


if __name__ == "__main__":
    make_app().listen(int(sys.argv[2]), address=sys.argv[1])
    tornado.ioloop.IOLoop.current().start()
