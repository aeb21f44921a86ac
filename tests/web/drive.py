#!/usr/bin/env python3
"""Drives headless Chromium, through chromedriver's WebDriver (W3C, JSON over HTTP:
urllib, no selenium), against the web view of a running `dnsd up`.

usage: drive.py WEB_URL LOCAL_ADDR SHOTS_DIR [--within SECS]

It opens the page, sends line-protocol and dig queries to the local server and finds
each on the page, with its path and code, within one second; submits the form in mode
I and R and finds every hop; flushes a name and sees it leave the cache view; uses the
form with the keyboard alone; filters and pauses the table; checks the page at 360 px
and 1920 px wide and every text's contrast (WCAG AA). Screenshots (PNG) go to SHOTS_DIR. Prints `ok: ...` lines;
exits 1 with `FAIL: ...` on the first check that does not hold. `--within` allows a
query longer than one second to show (a loaded machine); the times are printed.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
SEEN_WITHIN = 1.0  # seconds: a query must be on the page this soon
WAIT = 30.0  # seconds: a bound on anything else the page does (a hang, not a target)


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


class Driver:
    """The few WebDriver commands the test needs."""

    def __init__(self, chromedriver, chromium):
        self.profile = tempfile.mkdtemp(prefix="dnsd-web-chromium-")
        self.proc = subprocess.Popen(
            [chromedriver, "--port=0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        port = None
        deadline = time.monotonic() + WAIT
        while port is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if "started successfully on port" in line:
                port = int(line.rsplit("port", 1)[1].strip().rstrip("."))
        if port is None:
            self.proc.kill()
            fail("chromedriver did not say its port")
        self.base = "http://127.0.0.1:%d" % port
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--user-data-dir=" + self.profile,
                            "--window-size=1366,1800",
                        ],
                    },
                }
            }
        }
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())["value"]
        except urllib.error.HTTPError as e:
            fail("webdriver %s %s: %s" % (method, path, e.read()[:500]))

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.session, path), body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.s("POST", "/element/%s/click" % self.find(css), {})

    def type(self, css, text):
        eid = self.find(css)
        self.s("POST", "/element/%s/clear" % eid, {})
        self.s("POST", "/element/%s/value" % eid, {"text": text})

    def keys(self, *keys):
        actions = []
        for k in keys:
            actions += [{"type": "keyDown", "value": k}, {"type": "keyUp", "value": k}]
        self.s("POST", "/actions", {"actions": [{"type": "key", "id": "kbd", "actions": actions}]})

    def size(self, width, height):
        self.s("POST", "/window/rect", {"width": width, "height": height})

    def shot(self, path):
        png = base64.b64decode(self.s("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)

    def close(self):
        try:
            self.call("DELETE", "/session/" + self.session)
        finally:
            self.proc.kill()
            self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)


def wait_until(what, check, within=WAIT):
    """Polls `check` until it returns something true; returns it and the seconds taken."""
    start = time.monotonic()
    while True:
        got = check()
        if got:
            return got, time.monotonic() - start
        if time.monotonic() - start > within:
            fail("%s: not within %.1f s" % (what, within))
        time.sleep(0.02)


class LineClient:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        self.file = self.sock.makefile("r")
        self.ask("webtest")

    def ask(self, line):
        self.sock.sendall((line + "\n").encode())
        return self.file.readline().strip()


ROW = """
const [name, server, code] = arguments;
for (const tr of document.querySelectorAll('#queries tbody tr')) {
  if (tr.dataset.name === name && tr.dataset.server === server && tr.dataset.code === code) {
    return {path: tr.querySelector('.path-cell').textContent, cls: tr.className};
  }
}
return null;
"""


def seen(d, name, server, code, path_has):
    """Waits (one second at most) for the query's row, and checks its path."""
    row, took = wait_until(
        "%s at %s with %s on the page" % (name, server, code),
        lambda: d.js(ROW, name, server, code),
        within=SEEN_WITHIN,
    )
    for part in path_has:
        if part not in row["path"]:
            fail("%s: path %r does not go through %s" % (name, row["path"], part))
    print("ok: %s %s %s on the page after %.0f ms, path %s" % (server, name, code, took * 1000, row["path"]))
    return row


CONTRAST = """
function lum(c) {
  const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
  const p = m[1].split(',').map(Number);
  const ch = p.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return {l: 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2], a: p.length > 3 ? p[3] : 1};
}
function bg(el) {
  for (; el; el = el.parentElement) {
    const b = lum(getComputedStyle(el).backgroundColor);
    if (b && b.a > 0.5) return b.l;
  }
  return 1;
}
const bad = [];
let checked = 0;
for (const el of document.querySelectorAll('body *')) {
  const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own || el.closest('.visually-hidden')) continue;
  const st = getComputedStyle(el);
  if (st.visibility === 'hidden' || st.display === 'none' || el.getClientRects().length === 0) continue;
  const fg = lum(st.color).l, b = bg(el);
  const ratio = (Math.max(fg, b) + 0.05) / (Math.min(fg, b) + 0.05);
  const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight) >= 700;
  const need = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
  checked++;
  if (ratio < need) bad.push(el.tagName + '.' + el.className + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
}
return {checked, bad};
"""


def main():
    global SEEN_WITHIN
    args = sys.argv[1:]
    if len(args) == 5 and args[3] == "--within":
        SEEN_WITHIN = float(args[4])
        args = args[:3]
    if len(args) != 3:
        fail("usage: drive.py WEB_URL LOCAL_ADDR SHOTS_DIR [--within SECS]")
    web, local, shots = args
    os.makedirs(shots, exist_ok=True)
    d = Driver(shutil.which("chromedriver") or "chromedriver", shutil.which("chromium") or "/usr/bin/chromium")
    try:
        d.go(web)
        wait_until("the page's stream", lambda: "Live" in d.js("return document.getElementById('status').textContent"))
        print("ok: the page is live")
        client = LineClient(local)
        local_host, local_port = local.rsplit(":", 1)

        # A line-protocol query in mode I: local -> root (referral) -> gov.
        reply = client.ask("1, nasa.gov, I")
        if reply != "0X01, default_local, 52.0.14.116":
            fail("line reply " + reply)
        seen(d, "nasa.gov", "default_local", "0X01", ["root", "gov"])
        # The same again: a cache hit, drawn as one.
        client.ask("2, nasa.gov, I")
        row = seen(d, "nasa.gov", "default_local", "0X00", ["cache"])
        if "hit" not in row["cls"]:
            fail("a cache hit is not marked: " + row["cls"])
        # Another name under gov: the delegation cache skips the root.
        client.ask("3, www.irs.gov, I")
        row = seen(d, "www.irs.gov", "default_local", "0X01", ["gov"])
        if "deleg" not in row["cls"] or "root" in row["path"]:
            fail("a delegation-cache shortcut is not marked: %r" % row)
        # dig over TCP, for a name that does not exist.
        subprocess.run(
            ["dig", "@" + local_host, "-p", local_port, "nope.org", "+tcp", "+tries=1", "+time=5"],
            capture_output=True, text=True, timeout=30,
        )
        seen(d, "nope.org", "default_local", "NXDOMAIN", ["root", "org"])
        # dig: DNS over UDP, RD set, resolved in mode I through root and com.
        out = subprocess.run(
            ["dig", "@" + local_host, "-p", local_port, "www.google.com", "+short", "+tries=1", "+time=5"],
            capture_output=True, text=True, timeout=30,
        )
        if "142.250.72.4" not in out.stdout:
            fail("dig: " + out.stdout + out.stderr)
        seen(d, "www.google.com", "default_local", "NOERROR", ["root", "com"])
        wait_until("www.google.com in the cache view", lambda: d.js(
            "return !!document.querySelector('#cache tbody tr[data-name=\"www.google.com\"]')"))
        d.shot(os.path.join(shots, "web-mode-i.png"))

        # The form, mode R: every hop of the trace.
        d.type("#ask-name", "www.nasa.gov")
        d.click("input[name=mode][value=R]")
        d.click("#ask button[type=submit]")
        hops, _ = wait_until("the mode R trace", lambda: d.js(
            "return [...document.querySelectorAll('#trace-hops li.hop-reply')].map(l => l.dataset.server)"))
        want = [h["server"] for h in json.load(urllib.request.urlopen(
            web + "api/resolve?name=www.nasa.gov&mode=R", timeout=WAIT))["hops"]]
        if hops != want:
            fail("the form's R trace shows %s, the trace has %s" % (hops, want))
        print("ok: the form in mode R shows every hop: %s" % hops)

        # Mode R over the line protocol: the root asks com for the local server.
        reply = client.ask("4, www.amazon.com, R")
        if reply != "0X01, default_local, 205.251.242.103":
            fail("line reply " + reply)
        seen(d, "www.amazon.com", "default_local", "0X01", ["root", "com"])
        path, _ = wait_until("the mode R path drawn", lambda: (lambda p: p if "www.amazon.com" in p else None)(
            d.js("return document.getElementById('path').textContent")))
        for part in ("root → com", "com → root", "4, www.amazon.com, R", "0X01, root, 205.251.242.103"):
            if part not in path:
                fail("the R path is not drawn hop by hop (no %r): %s" % (part, path))
        print("ok: the mode R path is drawn line by line: 4, www.amazon.com, R ... root → com ... 0X01, root, 205.251.242.103")
        d.shot(os.path.join(shots, "web-mode-r.png"))

        # The form, mode I.
        d.click("input[name=mode][value=I]")
        d.click("#ask button[type=submit]")
        hops, _ = wait_until("the mode I trace", lambda: (lambda h: h if h == ["root", "gov"] else None)(d.js(
            "return [...document.querySelectorAll('#trace-hops li.hop-reply')].map(l => l.dataset.server)")))
        print("ok: the form in mode I shows every hop: %s" % hops)

        # Flush one name: it leaves the cache view.
        cached = "return !!document.querySelector('#cache tbody tr[data-name=\"nasa.gov\"]')"
        wait_until("nasa.gov in the cache view", lambda: d.js(cached))
        d.type("#flush-name", "nasa.gov")
        d.click("#flush button[type=submit]")
        wait_until("nasa.gov gone from the cache view", lambda: not d.js(cached))
        print("ok: nasa.gov flushed and gone from the cache view")

        # The keyboard alone: Tab to the form's name, type, Enter.
        d.js("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
        for _ in range(40):
            d.keys("\ue004")  # Tab
            if d.js("return document.activeElement && document.activeElement.id") == "ask-name":
                break
        else:
            fail("Tab never reached the form's name field")
        d.keys(*"wikipedia.org")
        d.keys("\ue007")  # Enter
        wait_until("the keyboard's trace", lambda: d.js(
            "const h = document.querySelector('#trace .head'); return h && h.textContent.includes('wikipedia.org')"))
        print("ok: the form works from the keyboard alone (Tab, type, Enter)")

        # The table: filtered by name and code as you type; paused, then resumed.
        d.type("#f-name", "amazon")
        names, _ = wait_until("the name filter", lambda: (lambda n: n if n and all("amazon" in x for x in n) else None)(
            d.js("return [...document.querySelectorAll('#queries tbody tr')].map(r => r.dataset.name)")))
        d.type("#f-name", "")
        d.type("#f-code", "nxdomain")
        codes, _ = wait_until("the code filter", lambda: (lambda c: c if c and set(c) == {"NXDOMAIN"} else None)(
            d.js("return [...document.querySelectorAll('#queries tbody tr')].map(r => r.dataset.code)")))
        d.type("#f-code", "")
        wait_until("the filters cleared", lambda: d.js(
            "return !!document.querySelector('#queries tbody tr[data-code=\"0X01\"]')"))
        print("ok: the table filters by name (%d rows) and by code (%d rows)" % (len(names), len(codes)))
        d.click("#pause")
        client = LineClient(local)
        client.ask("5, www.github.com, R")
        wait_until("the query held while paused", lambda: "held" in d.js("return document.getElementById('held').textContent"))
        if d.js(ROW, "www.github.com", "default_local", "0X01"):
            fail("a query was drawn while paused")
        d.click("#pause")
        seen(d, "www.github.com", "default_local", "0X01", ["root", "com"])
        print("ok: paused, a query is held, not drawn; resumed, it is")

        # Contrast, and the page at a phone's width and at 1920 px.
        result = d.js(CONTRAST)
        if result["bad"]:
            fail("contrast below WCAG AA: %s" % result["bad"][:10])
        print("ok: %d texts checked, every one at WCAG AA contrast" % result["checked"])
        for width in (360, 1920):
            d.size(width, 1200)
            inner = d.js("return window.innerWidth")
            scroll = d.js("return document.documentElement.scrollWidth")
            if scroll > inner + 1:
                fail("at %d px the page is %d px wide (viewport %d)" % (width, scroll, inner))
            result = d.js(CONTRAST)
            if result["bad"]:
                fail("at %d px, contrast below AA: %s" % (width, result["bad"][:10]))
            print("ok: at %d px the page fits (%d px) and keeps its contrast" % (width, scroll))
            d.shot(os.path.join(shots, "web-%dpx.png" % width))
    finally:
        d.close()
    print("PASS")


if __name__ == "__main__":
    main()
