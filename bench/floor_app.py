"""The HTTP floor for bench/serve.py: a bare FastAPI app, one `async def` returning a tiny JSON."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root() -> dict[str, str]:
    return {"status": "ok"}
