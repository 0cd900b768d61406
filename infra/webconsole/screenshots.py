"""Screenshots of the console's main pages for docs/console.md: `python3 -m webconsole.screenshots` (with
.venv's python; Debian's chromium and chromium-driver installed, as .ci/run installs them).

It starts `autotag local up` in a folder of its own on free ports, uploads a few objects, leaves one dead
letter (OSS throttled during one upload, through the admin API), invokes a test event, then signs in with
headless Chromium and saves each page as docs/console/<page>.png. It changes nothing else."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import oss2

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "console"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 120


def _admin(oss: str, token: str, method: str, path: str, body: Any) -> None:
    request = urllib.request.Request(f"{oss}/_admin/{path}", json.dumps(body).encode(), method=method)
    request.add_header("Authorization", f"Bearer {token}")
    urllib.request.urlopen(request, timeout=60).read()


def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise SystemExit(f"screenshots: {what} did not happen within {WAIT} s")


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def main() -> None:
    autotag = Path(sys.executable).with_name("autotag")
    with tempfile.TemporaryDirectory() as folder:
        env_vars = Path(folder) / "env.json"
        secret = secrets.token_hex(16)
        env_vars.write_text(json.dumps({"Parameters": {"AUTOTAG_RECORD_SECRET": secret}}))
        command = [str(autotag), "local", "up", "--oss-port", "0", "--fc-port", "0", "--cloudflow-port", "0"]
        command += ["--template", str(ROOT / "template.yml"), "--env-vars", str(env_vars)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=folder)
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(5)]
            banner = "".join(lines)
            oss = re.search(r"local OSS ready at (http://\S+)", banner)
            token = re.search(r"admin token: ([^)\s;]+)", banner)
            console = re.search(r"console ready at (http://\S+) .* sign in once at (\S+)", banner)
            if not (oss and token and console):
                raise SystemExit(f"screenshots: `autotag local up` did not say it was ready:\n{banner}")
            _take(oss[1], token[1], console[1], console[2], Path(folder))
        finally:
            process.terminate()
            process.wait(10)


def _take(oss: str, token: str, address: str, login: str, folder: Path) -> None:
    from selenium.webdriver.common.by import By

    bucket = oss2.Bucket(oss2.Auth("local-access-key", "local-secret-key"), oss, "autotag-demo")
    bucket.put_object("projects/apollo/photo.jpg", b"j" * 2048, headers={"x-oss-meta-owner": "ann"})
    bucket.put_object("projects/apollo/notes.txt", b"n" * 300, headers={"x-oss-tagging": "team=media"})
    bucket.put_object("tmp/scratch.csv", b"c" * 64)
    bucket.put_object("uploads/example.jpg", b"e" * 4096)  # the Functions page's OSS template names it
    bucket.put_object("<img src=x onerror=alert(1)>", b"x")
    tagged = ("projects/apollo/photo.jpg", "projects/apollo/notes.txt", "tmp/scratch.csv")
    _until(lambda: all("kind" in bucket.get_object_tagging(k).tag_set.tagging_rule for k in tagged), "tags")
    faults = {"faults": [{"kind": "throttle", "rate": 1.0, "apis": ["HeadObject", "GetObjectTagging"]}]}
    _admin(oss, token, "PUT", "conditions", faults)
    bucket.put_object("incoming/failed-upload.pdf", b"p")
    _until(lambda: (folder / ".localcloud" / "dead-letters.jsonl").exists(), "a dead letter")
    _admin(oss, token, "PUT", "conditions", {"faults": []})
    OUT.mkdir(parents=True, exist_ok=True)
    driver = _browser()
    try:
        driver.get(login)
        pages = {
            "bucket": "/bucket?name=autotag-demo&prefix=projects/apollo/",
            "object": "/object?bucket=autotag-demo&key=projects/apollo/notes.txt",
            "invocations": "/invocations",
            "dead-letters": "/dead-letters",
            "functions": "/functions",
            "function": "/function?name=tag-on-upload&template=oss",
            "rules": "/rules",
            "bulk": "/bulk",
        }
        for name, path in pages.items():
            driver.get(address + path)
            if name == "function":
                driver.find_element(By.ID, "invoke").click()
                _until(lambda: driver.find_elements(By.ID, "answer"), "the test event's answer")
            if name == "rules":
                driver.find_element(By.ID, "derive").click()
                _until(lambda: driver.find_elements(By.ID, "verdicts"), "the playground's answer")
            height = driver.execute_script("return document.body.scrollHeight")
            driver.set_window_size(1280, min(max(int(height) + 40, 600), 2400))
            path_out = OUT / f"{name}.png"
            driver.save_screenshot(str(path_out))
            print(f"{path_out.relative_to(ROOT)}")
            driver.set_window_size(1280, 900)
    finally:
        driver.quit()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
