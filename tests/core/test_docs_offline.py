"""`/docs` works without Internet access: every script, style sheet and icon the page loads is served by the API."""

import re


def test_docs_page_loads_only_assets_the_api_serves(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    assert len(assets) == 3, assets  # the bundle, its CSS and the icon
    for url in assets:
        assert url.startswith("/docs/assets/"), url
        answer = client.get(url)
        assert answer.status_code == 200 and len(answer.content) > 100, url
    assert "url: '/openapi.json'" in page.text
    assert not re.search(r"https?://", page.text.split("<script>")[0] + page.text.split("</script>")[-1])
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")  # what Swagger UI 5 reads


def test_swagger_ui_is_version_5_which_reads_openapi_3_1(client):
    bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
    assert re.search(r'"?swagger-ui"?[^\n]{0,40}5\.\d+\.\d+', bundle) or "5.31.0" in bundle


def test_no_cdn_pages_remain(client):
    assert client.get("/redoc").status_code == 404
    assert all(not path.startswith("/docs") for path in client.get("/openapi.json").json()["paths"])
