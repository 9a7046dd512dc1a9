"""wrk's scripts and summaries (loadtests/wrk.py), its install when missing, and the bodies it sends."""

from __future__ import annotations

import json
import random
import re
import subprocess

import pytest

from loadtests import products, wrk
from orders.api.serializers import CheckoutInput

SUMMARY = (
    'WRK_JSON {"requests": 4512, "duration_us": 5004321, "connect": 0, "read": 1, "write": 0, "status": 7, '
    '"timeout": 2, "mean_us": 17500.5, "p50_us": 15200, "p90_us": 30100, "p99_us": 61000, "max_us": 90000}'
)


def test_the_summary_is_read_from_the_done_hooks_json_line_in_milliseconds():
    stats = wrk.parse(f"Running 5s test @ http://127.0.0.1/\n  Non-2xx or 3xx responses: 7\n{SUMMARY}\n")

    assert (stats.requests, stats.seconds, stats.non_2xx) == (4512, 5.004321, 7)
    assert (stats.socket_errors, stats.timeouts) == (3, 2)
    assert (stats.p50_ms, stats.p90_ms, stats.p99_ms, stats.max_ms) == (15.2, 30.1, 61.0, 90.0)
    assert stats.rate == pytest.approx(4512 / 5.004321)


def test_a_run_without_a_summary_says_where_its_output_is():
    with pytest.raises(RuntimeError, match=r"wrk printed no summary; see out\.txt"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused", source="out.txt")


def test_a_post_script_sends_each_json_body_in_turn_and_a_get_script_only_reports():
    bodies = [
        {"email": f"b{i}@t.loadtest.example", "items": [{"sku": "mug", "quantity": 1}]} for i in range(3)
    ]

    post = wrk.script(method="POST", bodies=bodies)
    get = wrk.script(method="GET")

    assert 'wrk.method = "POST"' in post and 'wrk.headers["Content-Type"] = "application/json"' in post
    sent = re.findall(r"\[==\[(.*?)\]==\]", post.split("local bodies", 1)[1])
    assert [json.loads(text) for text in sent] == bodies
    assert "request = function()" in post and "done = function(summary, latency, requests)" in post
    assert 'wrk.method = "GET"' in get and "request = function" not in get and "wrk.body" not in get
    assert '"WRK_JSON "' in get


@pytest.mark.parametrize("product", products.PRODUCTS)
def test_the_bodies_are_valid_checkout_input(product):
    skus = [products.HOT_SKU] if product == "hot" else ["mug", "lamp", "mat", "cup"]
    rng = random.Random(1)

    for _ in range(50):
        body = products.basket(product, skus, "sat-test", rng)
        form = CheckoutInput(data=body)

        assert form.is_valid(), form.errors
        assert body["email"].endswith("@sat-test.loadtest.example")
        if product == "hot":
            assert body["items"] == [{"sku": products.HOT_SKU, "quantity": 1}]
        else:
            assert 1 <= len(body["items"]) <= products.MAX_LINES
            assert len({i["sku"] for i in body["items"]}) == len(body["items"])


def test_the_hot_product_is_the_seeded_catalogues_limited_one():
    from shop.catalogue import DEMO_STOCK

    assert DEMO_STOCK.get(products.HOT_SKU)


def test_a_missing_wrk_is_installed_with_apt_get_as_root(monkeypatch):
    calls: list[list[str]] = []
    installed = {"done": False}

    def run(argv, **kwargs):
        calls.append(argv)
        assert kwargs["env"]["DEBIAN_FRONTEND"] == "noninteractive"
        ok = argv != wrk.APT_INSTALL or len(calls) > 1  # the first install fails: no package lists yet
        installed["done"] = installed["done"] or (argv == wrk.APT_INSTALL and ok)
        return subprocess.CompletedProcess(argv, 0 if ok else 100, "", "E: Unable to locate package wrk")

    monkeypatch.setattr(wrk.shutil, "which", _which(installed))
    monkeypatch.setattr(wrk.os, "geteuid", lambda: 0)
    monkeypatch.setattr(wrk.subprocess, "run", run)
    said: list[str] = []

    assert wrk.ensure_installed(said.append) == "/usr/bin/wrk"
    assert calls == [wrk.APT_INSTALL, ["apt-get", "update", "-qq"], wrk.APT_INSTALL]
    assert said == [
        "wrk is not installed; installing Debian's wrk for the saturation phase: " + " ".join(wrk.APT_INSTALL)
    ]


def test_without_root_a_missing_wrk_stops_the_run_with_the_command_to_install_it(monkeypatch):
    monkeypatch.setattr(wrk.shutil, "which", _which({"done": False}))
    monkeypatch.setattr(wrk.os, "geteuid", lambda: 1000)

    with pytest.raises(SystemExit, match=r"sudo apt-get install -y -qq wrk.*--saturation-seconds 0"):
        wrk.ensure_installed(print)


def _which(installed: dict):
    """shutil.which as if wrk were missing until `installed["done"]`; apt-get is always there."""

    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name == "apt-get" or installed["done"] else None

    return which
