#!/usr/bin/env python3
"""Serves five with the standard library's WSGI server: serve.py ADDR PORT.
Production would put gunicorn (requirements/production.txt) here instead."""
import sys
from wsgiref.simple_server import make_server, WSGIRequestHandler


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    from five.wsgi import application

    make_server(sys.argv[1], int(sys.argv[2]), application, handler_class=QuietHandler).serve_forever()
