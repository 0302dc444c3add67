"""HTTP API modules. Each exposes ``router = fastapi.APIRouter()``; ``opswatch.server.app.ROUTERS`` lists
the ones the app includes. Handlers parse and answer; the work is done by plain modules elsewhere."""
