#!/usr/bin/env python3
"""The test suite of hello, as tornado-boilerplate runs it."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tornado.testing import AsyncHTTPTestCase  # noqa: E402

import app  # noqa: E402
import settings  # noqa: E402


class AppTest(AsyncHTTPTestCase):
    def get_app(self):
        return app.make_app()

    def test_hello(self):
        self.assertIn(b"hello from Tornado", self.fetch("/").body)

    def test_version(self):
        self.assertEqual(self.fetch("/version").body.decode().strip(), app.SHA)

    def test_maintenance(self):
        settings.MAINTENANCE_MODE = True
        try:
            self.assertEqual(self.fetch("/").code, 503)
        finally:
            settings.MAINTENANCE_MODE = False


if __name__ == "__main__":
    unittest.main()
