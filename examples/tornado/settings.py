"""Settings of hello. mage maint:enable / maint:disable set MAINTENANCE_MODE."""
import os

DEPLOYMENT_TYPE = os.environ.get("DEPLOYMENT_TYPE", "SOLO")
DEBUG = DEPLOYMENT_TYPE in ("SOLO", "DEV")
MAINTENANCE_MODE = False
