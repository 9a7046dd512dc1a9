def test_healthz_answers_any_host_without_touching_the_database(client, settings):
    # No database fixture: pytest-django fails the test if anything queries the database.
    settings.ALLOWED_HOSTS = ["shop.example.com"]

    response = client.get("/healthz", HTTP_HOST="10.0.3.17:8000")  # an ALB probe's Host

    assert response.status_code == 200
    assert response.content == b"ok\n"


def test_other_paths_still_check_the_host(client, settings):
    settings.ALLOWED_HOSTS = ["shop.example.com"]

    assert client.get("/api/products", HTTP_HOST="10.0.3.17:8000").status_code == 400
