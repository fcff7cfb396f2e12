"""Settings of five. DEPLOYMENT_TYPE (SOLO, DEV, STAGING, PRODUCTION) is set
by magefab on every host and in test:run."""
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
    "five",
]
MIDDLEWARE = ["five.views.MaintenanceMiddleware"]
ROOT_URLCONF = "five.urls"
WSGI_APPLICATION = "five.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR.parent.parent / "five.sqlite3",
    }
}
USE_TZ = True
