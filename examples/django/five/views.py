"""Views of five: a greeting, and the commit the release serves."""
import subprocess
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse

_ROOT = Path(__file__).resolve().parent.parent
_SHA = subprocess.run(
    ["git", "-c", "safe.directory=*", "rev-parse", "HEAD"],
    cwd=_ROOT, capture_output=True, text=True, check=False,
).stdout.strip()


def index(request):
    return HttpResponse("five says hello (%s)\n" % _SHA[:7], content_type="text/plain")


def version(request):
    """The commit this release runs: magefab's VersionURL."""
    return HttpResponse(_SHA + "\n", content_type="text/plain")


class MaintenanceMiddleware:
    """Answers 503 while MAINTENANCE_MODE is on, except for /version/."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.MAINTENANCE_MODE and not request.path.startswith("/version"):
            return HttpResponse("five is down for maintenance\n", status=503, content_type="text/plain")
        return self.get_response(request)
