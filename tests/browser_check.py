"""The storefront widget and the demo storefront in a real browser (issue #12).

Usage: browser_check.py CLOUDPF_BINARY [--screenshots DIR]

Runs `cloudpf demo --serve` on a small catalog, serves two pages of other origins that
embed the widget with one script tag, and drives Debian's `chromium` through playwright
(launched by its executable path: no browser is downloaded). What a shopper would
notice is asserted; expected products come from the API itself (the oracle), never
from hard-coded names. Every wait is a condition with a deadline (playwright's expect).
With --screenshots, the storefront, its open dropdown and the phone layout are saved
there (the README shows the copies in docs/).
"""

import argparse
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 10_000
# A dashboard runs about ten reports, two at a time; a debug build's DataFusion is slow.
REPORTS_TIMEOUT_MS = 90_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_get(base, path, key=None, origin=None, method="GET"):
    req = urllib.request.Request(base + path, method=method)
    if key:
        req.add_header("X-API-Key", key)
    if origin:
        req.add_header("Origin", origin)
        req.add_header("Access-Control-Request-Method", "GET")
        req.add_header("Access-Control-Request-Headers", "x-api-key")
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
        return r.headers, (json.loads(body) if body and method == "GET" else None)


def api_report(base, tenant, key, spec):
    """POST /analytics/{tenant}/report: the JSON body, or the CSV text with format csv."""
    req = urllib.request.Request(f"{base}/analytics/{tenant}/report", method="POST",
                                 data=json.dumps(spec).encode())
    req.add_header("X-API-Key", key)
    req.add_header("Content-Type", "application/json")
    for attempt in range(20):
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                body = r.read()
                return body.decode() if spec.get("format") == "csv" else json.loads(body)
        except urllib.error.HTTPError as e:
            # At most two reports of a shop run at once; the page may hold both.
            if e.code != 429 or attempt == 19:
                raise
            time.sleep(0.5)


def wait_until(what, condition, seconds=120):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if condition():
                return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Demo:
    """`cloudpf demo --serve` on a fresh data directory."""

    def __init__(self, binary, workdir):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data = os.path.join(workdir, "data")
        self.log = open(os.path.join(workdir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "demo", "--data-dir", self.data, "--tenants", "2", "--products", "120",
             "--purchases", "80", "--addr", f"127.0.0.1:{self.port}", "--serve"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_until("the demo API", lambda: self.proc.poll() is None
                   and api_get(self.base, "/health")[1]["status"] == "ok", 300)
        if self.proc.poll() is not None:
            raise AssertionError("cloudpf demo exited; see " + self.log.name)
        with open(os.path.join(self.data, "demo-keys.json")) as f:
            self.keys = json.load(f)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def allow_origin(self, tenant, origin):
        """Adds `origin` to the tenant's cors_origins in the tenants file the server
        follows, and waits until a preflight from it is allowed."""
        path = os.path.join(self.data, "tenants.toml")
        with open(path) as f:
            text = f.read()
        block = re.compile(r'(id = "%s"\ncors_origins = \[)' % re.escape(tenant))
        text, n = block.subn(r'\1"%s", ' % origin, text)
        assert n == 1, "tenants.toml has no cors_origins line for " + tenant
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

        def allowed():
            headers, _ = api_get(self.base, f"/search/{tenant}/autocomplete", origin=origin,
                                 method="OPTIONS")
            return headers.get("access-control-allow-origin") == origin

        wait_until(f"{origin} allowed for {tenant}", allowed, 10)


def other_origin_page(api_base, tenant, key):
    """A storefront page on another origin: one input, one results element, one script tag."""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Another shop</title></head>
<body><h1>Another storefront</h1><input id="q" type="search" aria-label="Search">
<div id="results"></div>
<script src="{api_base}/widget/v1/cloudpf-search.js" defer data-tenant="{tenant}"
 data-key="{key}" data-input="#q" data-results="#results"></script></body></html>"""


def serve_page(html):
    """Serves `html` at / on a free loopback port (another origin than the API's)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def typing_prefix(demo, tenant, key, product):
    """The shortest start of the product's name (3 letters or more) for which the API's
    own autocomplete (the size the widget asks for) suggests it."""
    name = product["name"]
    for n in range(3, len(name) + 1):
        if not name[n - 1].isalnum():
            continue
        q = urllib.parse.quote(name[:n])
        _, body = api_get(demo.base, f"/search/{tenant}/autocomplete?q={q}&size=6", key)
        if any(s["product_id"] == product["product_id"] for s in body["suggestions"]):
            return name[:n]
    raise AssertionError(f"the API never suggests {name!r}")


def with_typo(word):
    """`word` with one letter in the middle replaced."""
    i = len(word) // 2
    return word[:i] + ("x" if word[i].lower() != "x" else "z") + word[i + 1:]


class Checks:
    def __init__(self):
        self.failed = []
        self.page_errors = []

    def run(self, name, fn, *args):
        try:
            fn(*args)
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the run fails
            print(f"FAIL {name}: {e}")
            self.failed.append(name)

    def watch(self, page):
        page.on("pageerror", lambda e: self.page_errors.append(f"{page.url}: {e}"))
        return page


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--screenshots")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("Debian's chromium is not installed (tests/run installs it)")
    workdir = tempfile.mkdtemp(prefix="cloudpf-browser-")
    demo = Demo(os.path.abspath(args.binary), workdir)
    servers = []
    checks = Checks()
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        tenant, keys = sorted(demo.keys.items())[0]
        key = keys["search_key"]
        _, browse = api_get(demo.base, f"/search/{tenant}/products?size=50", key)
        product = next(h["product"] for h in browse["hits"]
                       if re.match(r"^[A-Za-z]{5,} ", h["product"]["name"]))
        prefix = typing_prefix(demo, tenant, key, product)
        first_word = product["name"].split(" ")[0]
        typo_query = with_typo(first_word) + product["name"][len(first_word):]
        print(f"shop {tenant}: {product['name']!r} typed as {prefix!r}, with a typo {typo_query!r}")

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            desktop = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
            store = f"{demo.base}/?shop={tenant}"

            def first_letters_show_the_product_in_the_dropdown():
                page = checks.watch(desktop.new_page())
                page.goto(store)
                expect(page.locator(".cpf-hit").first).to_be_visible()
                box = page.locator("#q")
                box.press_sequentially(prefix, delay=60)
                option = page.locator("[role=option]", has_text=product["name"])
                expect(option).to_be_visible()
                expect(box).to_have_attribute("aria-expanded", "true")
                expect(option.locator("mark").first).to_be_visible()
                expect(option.locator(".cpf-option-price")).not_to_be_empty()
                if args.screenshots:
                    page.screenshot(path=os.path.join(args.screenshots, "storefront-dropdown.png"))
                page.close()

            def a_one_letter_typo_still_finds_the_product():
                page = checks.watch(desktop.new_page())
                page.goto(store)
                box = page.locator("#q")
                box.fill(typo_query)
                box.press("Enter")
                hit = page.locator(f".cpf-hit[data-product-id='{product['product_id']}']")
                expect(hit).to_be_visible()
                expect(page.locator("[role=listbox]")).to_be_hidden()
                if args.screenshots:
                    page.screenshot(path=os.path.join(args.screenshots, "storefront.png"))
                page.close()

            def nothing_found_offers_what_the_api_suggests():
                # A word of a product's name two letters off (more than the typo
                # tolerance of a 4- or 5-letter word allows) after another of its words:
                # nothing matches, and the API's own "did you mean" and closest products
                # are the expected offer.
                def two_off(word):
                    return word[0] + "".join("x" if c != "x" else "z" for c in word[1:3]) + word[3:]

                for hit in browse["hits"]:
                    words = re.findall(r"[A-Za-z]+", hit["product"]["name"])
                    pairs = [(a, b) for a, b in zip(words, words[1:])
                             if len(a) >= 5 and 4 <= len(b) <= 5]
                    if not pairs:
                        continue
                    query = f"{pairs[0][0]} {two_off(pairs[0][1].lower())}"
                    q = urllib.parse.quote(query)
                    _, found = api_get(demo.base, f"/search/{tenant}/products?q={q}", key)
                    if found["total"] == 0 and found.get("did_you_mean"):
                        break
                else:
                    raise AssertionError("no demo product gives a query with a did-you-mean")
                _, near = api_get(demo.base, f"/search/{tenant}/autocomplete?q={q}&size=4", key)
                page = checks.watch(desktop.new_page())
                page.goto(store)
                box = page.locator("#q")
                box.fill(query)
                box.press("Enter")
                expect(page.locator(".cpf-summary")).to_contain_text("No products match")
                offers = [s["text"] for s in near["suggestions"]]
                if offers:
                    expect(page.locator(".cpf-nearest button")).to_have_text(offers)
                fix = page.locator(".cpf-did-you-mean button")
                expect(fix).to_have_text(found["did_you_mean"])
                fix.click()
                expect(box).to_have_value(found["did_you_mean"])
                expect(page.locator(".cpf-hit").first).to_be_visible()
                page.close()

            def arrow_keys_and_enter_open_the_results_and_escape_closes():
                page = checks.watch(desktop.new_page())
                page.goto(store)
                box = page.locator("#q")
                box.press_sequentially(prefix, delay=60)
                options = page.locator(".cpf-option-product")
                expect(options.first).to_be_visible()
                box.press("ArrowDown")
                box.press("ArrowDown")
                box.press("ArrowUp")
                chosen = options.first
                expect(chosen).to_have_attribute("aria-selected", "true")
                expect(box).to_have_attribute("aria-activedescendant", chosen.get_attribute("id"))
                text = chosen.locator(".cpf-option-text").inner_text()
                box.press("Enter")
                expect(box).to_have_value(text)
                expect(page.locator(".cpf-hit-name", has_text=text).first).to_be_visible()
                expect(box).to_have_attribute("aria-expanded", "false")
                box.press_sequentially(" ", delay=60)
                box.press("Backspace")
                expect(page.locator("[role=listbox]")).to_be_visible()
                box.press("Escape")
                expect(page.locator("[role=listbox]")).to_be_hidden()
                expect(box).to_have_attribute("aria-expanded", "false")
                page.close()

            def a_category_facet_narrows_the_results_to_its_count():
                page = checks.watch(desktop.new_page())
                page.goto(store)
                facet = page.locator("#facet-category .facet-value").first
                expect(facet).to_be_visible()
                category = facet.get_attribute("data-value")
                count = int(facet.locator(".count").inner_text())
                facet.click()
                expect(facet).to_have_attribute("aria-pressed", "true")
                summary = page.locator(".cpf-summary")
                expect(summary).to_contain_text(f"{count} product")
                cats = page.locator(".cpf-hit-category")
                expect(cats.first).to_have_text(category)
                assert set(cats.all_inner_texts()) == {category}, cats.all_inner_texts()
                page.close()

            def sort_price_filter_and_paging_change_the_results():
                page = checks.watch(desktop.new_page())
                page.goto(store)
                expect(page.locator(".cpf-hit").first).to_be_visible()
                page.select_option("#sort", "price_asc")
                prices = page.locator(".cpf-hit-price")

                def amounts():
                    return [float(re.sub(r"[^0-9.]", "", p)) for p in prices.all_inner_texts()]

                expect(page.locator(".cpf-page-number")).to_have_text(re.compile(r"^Page 1"))
                wait_until("ascending prices", lambda: amounts() == sorted(amounts()) and
                           len(amounts()) > 1, 10)
                cheapest_page_one = amounts()[-1]
                page.locator(".cpf-page", has_text="Next").click()
                expect(page.locator(".cpf-page-number")).to_have_text(re.compile(r"^Page 2"))
                assert min(amounts()) >= cheapest_page_one, amounts()
                page.fill("#min-price", "20")
                page.fill("#max-price", "60")
                page.locator("#price button").click()
                expect(page.locator(".cpf-page-number").or_(page.locator(".cpf-summary"))
                       .first).to_be_visible()
                wait_until("prices within 20 to 60", lambda: amounts() and
                           all(20 <= a <= 60 for a in amounts()), 10)
                page.close()

            def the_api_down_shows_a_message_and_the_input_keeps_working():
                page = checks.watch(desktop.new_page())
                page.goto(store)
                expect(page.locator(".cpf-hit").first).to_be_visible()
                page.route("**/autocomplete*", lambda route: route.abort())
                box = page.locator("#q")
                box.press_sequentially(prefix, delay=60)
                expect(page.locator(".cpf-problem")).to_contain_text("not available")
                box.press_sequentially("zz", delay=30)
                expect(box).to_have_value(prefix + "zz")
                page.unroute("**/autocomplete*")
                box.fill("")
                box.press_sequentially(prefix, delay=60)
                expect(page.locator("[role=option]", has_text=product["name"])).to_be_visible()
                page.close()

            def the_dropdown_fits_a_phone_screen():
                phone = browser.new_context(viewport={"width": 375, "height": 740},
                                            is_mobile=True, has_touch=True, locale="en-US")
                page = checks.watch(phone.new_page())
                page.goto(store)
                page.locator("#q").press_sequentially(prefix, delay=60)
                listbox = page.locator("[role=listbox]")
                expect(listbox.locator("[role=option]").first).to_be_visible()
                bbox = listbox.bounding_box()
                assert bbox["x"] >= 0 and bbox["x"] + bbox["width"] <= 375, bbox
                if args.screenshots:
                    page.screenshot(path=os.path.join(args.screenshots, "storefront-phone.png"))
                phone.close()

            def the_widget_on_another_origin_works_only_when_the_shop_allows_it():
                allowed, allowed_base = serve_page(other_origin_page(demo.base, tenant, key))
                refused, refused_base = serve_page(other_origin_page(demo.base, tenant, key))
                servers.extend([allowed, refused])
                demo.allow_origin(tenant, allowed_base)
                page = checks.watch(desktop.new_page())
                page.goto(allowed_base + "/")
                page.locator("#q").press_sequentially(prefix, delay=60)
                expect(page.locator("[role=option]", has_text=product["name"])).to_be_visible()
                page.locator("#q").press("Enter")
                expect(page.locator(".cpf-hit").first).to_be_visible()
                page.close()
                page = checks.watch(desktop.new_page())
                page.goto(refused_base + "/")
                page.locator("#q").press_sequentially(prefix, delay=60)
                expect(page.locator(".cpf-problem")).to_be_visible()
                assert page.locator(".cpf-option-product").count() == 0
                page.close()

            admin = keys["admin_key"]

            def summary(frm, to, **filters):
                body = api_report(demo.base, tenant, admin, {"report": "summary", "from": frm,
                                                             "to": to, "filters": filters})
                return dict(zip(body["columns"], body["rows"][0]))

            def shown_kpis(page):
                return {k: page.locator(f".kpi[data-kpi={k}] .value").get_attribute("data-value")
                        for k in ("revenue", "orders", "average_order_value", "customers")}

            def signed_in_dashboard(context):
                page = checks.watch(context.new_page())
                page.goto(demo.base + "/dashboard")
                page.fill("#tenant", tenant)
                page.fill("#key", admin)
                page.locator("#sign-in button[type=submit]").click()
                expect(page.locator("body[data-loaded]")).to_be_attached(timeout=REPORTS_TIMEOUT_MS)
                return page

            def the_dashboard_shows_the_apis_kpis_and_draws_its_charts():
                context = browser.new_context(viewport={"width": 1280, "height": 1400},
                                              locale="en-US", accept_downloads=True)
                page = signed_in_dashboard(context)
                frm, to = page.input_value("#from"), page.input_value("#to")
                want = summary(frm, to)
                got = shown_kpis(page)
                assert got == {k: str(want[k]) for k in got}, (got, want)
                assert int(want["orders"]) > 0, "the demo has no orders in the default range"
                expect(page.locator(".kpi[data-kpi=orders] .value")).to_have_text(
                    f"{int(want['orders']):,}")
                days = (time.mktime(time.strptime(to, "%Y-%m-%d"))
                        - time.mktime(time.strptime(frm, "%Y-%m-%d"))) // 86400 + 1
                expect(page.locator("#chart")).to_have_attribute("data-points", str(int(days)))
                expect(page.locator("#chart canvas").first).to_be_visible()
                top = api_report(demo.base, tenant, admin, {"report": "top_products", "from": frm,
                                                            "to": to, "limit": 10})
                rows = page.locator("[data-report=top_products] tbody tr")
                expect(rows).to_have_count(len(top["rows"]))
                expect(rows.first).to_contain_text(top["rows"][0][1])
                # The admin key was traded for a short-lived token: only the token sits
                # in the tab's session storage; neither is in the URL, the page or a
                # cookie.
                stored = json.loads(page.evaluate("sessionStorage.getItem('cloudpf.dashboard')"))
                assert stored["key"].startswith("cpft_") and admin not in json.dumps(stored), stored
                assert admin not in page.url and admin not in page.content()
                assert stored["key"] not in page.url and stored["key"] not in page.content()
                assert context.cookies() == []
                if args.screenshots:
                    page.screenshot(path=os.path.join(args.screenshots, "dashboard.png"),
                                    full_page=True)
                with page.expect_download() as download:
                    page.locator("[data-report=by_category] .csv").click()
                with open(download.value.path()) as f:
                    csv_text = f.read()
                assert csv_text == api_report(demo.base, tenant, admin, {
                    "report": "by_category", "from": frm, "to": to, "format": "csv",
                    "limit": 1000}), csv_text[:200]
                # A report filter narrows the KPIs exactly as the API does.
                country = api_report(demo.base, tenant, admin, {
                    "report": "by_country", "from": frm, "to": to})["rows"][0][0]
                page.fill("#country", country)
                page.evaluate("document.body.removeAttribute('data-loaded')")
                page.locator("#controls button[type=submit]").click()
                expect(page.locator("body[data-loaded]")).to_be_attached(timeout=REPORTS_TIMEOUT_MS)
                want = summary(frm, to, country=country)
                expect(page.locator(".kpi[data-kpi=orders] .value")).to_have_attribute(
                    "data-value", str(want["orders"]))
                assert shown_kpis(page) == {k: str(want[k]) for k in got}
                # The session survives a reload; signing out forgets the key.
                page.reload()
                expect(page.locator("body[data-loaded]")).to_be_attached(timeout=REPORTS_TIMEOUT_MS)
                page.locator("#sign-out").click()
                expect(page.locator("#sign-in")).to_be_visible()
                assert page.evaluate("sessionStorage.getItem('cloudpf.dashboard')") is None
                context.close()

            def a_wrong_or_search_key_on_the_dashboard_shows_an_error():
                page = checks.watch(desktop.new_page())
                page.goto(demo.base + "/dashboard")
                for wrong in ("cpfa_not_a_key", key):
                    page.fill("#tenant", tenant)
                    page.fill("#key", wrong)
                    page.locator("#sign-in button[type=submit]").click()
                    expect(page.locator("#sign-in-error")).to_be_visible()
                    expect(page.locator("#sign-in-error")).to_contain_text("refused")
                    expect(page.locator("#board")).to_be_hidden()
                page.close()

            def searches_reach_the_dashboard_and_come_back_as_popular_suggestions():
                word = first_word.lower()
                page = checks.watch(desktop.new_page())
                page.goto(store)
                box = page.locator("#q")
                box.fill(first_word)
                box.press("Enter")
                hit = page.locator(".cpf-hit-link").first
                expect(hit).to_be_visible()
                hit.click()
                expect(page.locator("#product")).to_be_visible()
                page.locator("#product button").click()
                page.close()
                today = time.strftime("%Y-%m-%d", time.gmtime())
                yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))

                def top_queries():
                    body = api_report(demo.base, tenant, admin, {
                        "report": "top_queries", "from": yesterday, "to": today, "limit": 50})
                    return {r[0]: r for r in body["rows"]}

                # The log is written a few seconds after the searches.
                wait_until(f"{word!r} in the search log with a click",
                           lambda: word in top_queries() and int(top_queries()[word][2]) >= 1, 60)
                want = top_queries()[word]
                page = signed_in_dashboard(desktop)
                row = page.locator("[data-report=top_queries] tbody tr").filter(
                    has=page.locator("td:first-child", has_text=re.compile(rf"^{re.escape(word)}$")))
                expect(row).to_be_visible()
                expect(row.locator("td").nth(1)).to_have_text(want[1])
                if args.screenshots:  # now with the Search section filled in
                    page.set_viewport_size({"width": 1280, "height": 1400})
                    page.screenshot(path=os.path.join(args.screenshots, "dashboard.png"),
                                    full_page=True)
                page.close()

                # Successful searches come back as the shop's popular searches.
                def popular():
                    _, body = api_get(demo.base, f"/search/{tenant}/autocomplete?q={word[:3]}", key)
                    return [q["text"] for q in body["queries"]]

                wait_until(f"{word!r} among the popular searches", lambda: word in popular(), 60)
                page = checks.watch(desktop.new_page())
                page.goto(store)
                page.locator("#q").press_sequentially(word[:3], delay=60)
                option = page.locator(".cpf-option-query .cpf-option-text",
                                      has_text=re.compile(rf"^{re.escape(word)}$"))
                expect(option).to_be_visible()
                option.click()
                expect(page.locator("#q")).to_have_value(word)
                expect(page.locator(".cpf-hit").first).to_be_visible()
                page.close()

            checks.run("typing the first letters shows the product in the dropdown",
                       first_letters_show_the_product_in_the_dropdown)
            checks.run("a one-letter typo still finds the product",
                       a_one_letter_typo_still_finds_the_product)
            checks.run("nothing found offers the API's did-you-mean and closest products",
                       nothing_found_offers_what_the_api_suggests)
            checks.run("arrow keys and Enter open the results; Escape closes the list",
                       arrow_keys_and_enter_open_the_results_and_escape_closes)
            checks.run("a category facet narrows the results to its count",
                       a_category_facet_narrows_the_results_to_its_count)
            checks.run("sort, paging and the price filter change the results",
                       sort_price_filter_and_paging_change_the_results)
            checks.run("with the API down the box says so and keeps working",
                       the_api_down_shows_a_message_and_the_input_keeps_working)
            checks.run("the dropdown fits a phone screen", the_dropdown_fits_a_phone_screen)
            checks.run("the widget on another origin works only when the shop allows it",
                       the_widget_on_another_origin_works_only_when_the_shop_allows_it)
            checks.run("the dashboard shows the API's KPIs, charts, reports and CSV",
                       the_dashboard_shows_the_apis_kpis_and_draws_its_charts)
            checks.run("a wrong key or a search key on the dashboard shows an error",
                       a_wrong_or_search_key_on_the_dashboard_shows_an_error)
            checks.run("searches reach the dashboard and come back as popular suggestions",
                       searches_reach_the_dashboard_and_come_back_as_popular_suggestions)
            browser.close()
    finally:
        for s in servers:
            s.shutdown()
        demo.stop()
    if checks.page_errors:
        print("uncaught errors in pages:\n  " + "\n  ".join(checks.page_errors))
        checks.failed.append("no uncaught errors")
    if checks.failed:
        sys.exit(f"{len(checks.failed)} browser check(s) failed; server log in {workdir}")
    shutil.rmtree(workdir, ignore_errors=True)
    print("browser checks passed")


if __name__ == "__main__":
    main()
