"""The HTTP floor for bench/serve.py: a bare FastAPI app, `async def` endpoints returning a tiny
JSON: `/`, and `/recommend/{user_id}` so the floor can be driven by the very request stream
(wrk's script picking a random user per request) that drives the service's /recommend."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/recommend/{user_id}")
async def same_path(user_id: str) -> dict[str, str]:
    return {"status": "ok"}
