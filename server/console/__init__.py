"""The web console at `/`: pages, htmx fragments and vendored static files, on the same app as the API."""

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from server.console import fragments, keys, market, memory, pages, schedules
from server.console.render import HERE, STATIC_PATH

router = APIRouter()
router.include_router(pages.router)
router.include_router(fragments.router)
router.include_router(keys.router)
router.include_router(market.router)
router.include_router(memory.router)
router.include_router(schedules.router)
router.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="console-static")
