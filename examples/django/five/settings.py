"""Settings of five. DEPLOYMENT_TYPE (SOLO, DEV, STAGING, PRODUCTION) is set
by magefab on every host and in test:run, and by the init script that runs
the app."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEPLOYMENT_TYPE = os.environ.get("DEPLOYMENT_TYPE", "SOLO")
DEBUG = DEPLOYMENT_TYPE in ("SOLO", "DEV")
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only-for-development")
ALLOWED_HOSTS = ["*"]

# mage maint:enable / maint:disable set this line on every host.
MAINTENANCE_MODE = False

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "five",
]
MIDDLEWARE = [
    "five.views.MaintenanceMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
]
ROOT_URLCONF = "five.urls"
WSGI_APPLICATION = "five.wsgi.application"

# Data lives in the checkout when working locally, and on a server in the
# deploy root (/var/webapps/five, beside releases/), which both release
# dirs share.
DATA_DIR = BASE_DIR if DEPLOYMENT_TYPE == "SOLO" else BASE_DIR.parent.parent
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "five.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
