import httpx

from gateway.app import create_app


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://gateway")


async def test_healthz() -> None:
    async with _client() as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_unknown_route_is_404() -> None:
    async with _client() as client:
        assert (await client.get("/v1/nope")).status_code == 404
