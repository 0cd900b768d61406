"""The README and docs are tests: every `bash` block runs verbatim, in a fresh copy of the tracked files
with the README's setup done (the project's .venv), against `autotag local up` on its documented ports.

Fence info strings say how a block runs: `bash` runs as a bash script (`set -e`, so any failing command
fails the test); `bash background` is `autotag local up` (with its options), started before the
document's other blocks; `bash alibaba` needs a real Alibaba Cloud account, so only the `--help` of each
`autotag` line runs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# The one documented command not run here: it is the command that runs this test.
NOT_RUN_HERE = "python3 dev.py test"
LOCAL_PORTS = (9000, 9001, 9003)  # OSS, the FC API and the console


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    mode: str  # "", "background" or "alibaba"
    text: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def bash_blocks(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match[1] != "bash":
            continue
        mode = match[2].strip()
        assert mode in ("", "background", "alibaba"), f"{document}: unknown block mode {mode!r}"
        found.append(Block(document, text[: match.start()].count("\n") + 1, mode, match[3]))
    return found


DOCUMENTED = [d for d in DOCUMENTS if bash_blocks(d)]


def fresh_copy(destination: Path) -> Path:
    """The tracked files, as a clone has them, plus the .venv the README's setup command made."""
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    (destination / ".venv").symlink_to(ROOT / ".venv")
    return destination


def environment(clone: Path, home: Path) -> dict[str, str]:
    """A user's shell after the setup command: .venv on PATH, no cloud settings, no credentials files."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "AUTOTAG_", "PYTEST"))}
    return {**kept, "PATH": f"{clone / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}", "HOME": str(home)}


def busy_ports(wait: float = 15.0) -> list[int]:
    """The documented ports something still listens on, after waiting up to `wait` seconds for them."""
    deadline = time.monotonic() + wait
    while True:
        busy = []
        for port in LOCAL_PORTS:
            with socket.socket() as probe:
                # as the servers bind: a connection of a finished run in TIME_WAIT does not hold the port
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(port)
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.5)


@pytest.mark.timeout(900)
def test_documented_commands_run_verbatim(tmp_path: Path) -> None:
    """One test for every document, in turn: they share the documented ports."""
    for number, document in enumerate(DOCUMENTED):
        run_document(document, tmp_path / str(number))


def run_document(document: Path, tmp_path: Path) -> None:
    busy = busy_ports()
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout if busy else ""
    assert not busy, f"ports {busy} are taken: stop whatever listens there:\n{listening}"
    tmp_path.mkdir(parents=True)
    clone = fresh_copy(tmp_path / "clone")
    env = environment(clone, tmp_path / "home")
    blocks = bash_blocks(document)
    background = None
    if any(b.mode == "background" for b in blocks):
        (started,) = {b.text.strip() for b in blocks if b.mode == "background"}
        assert started.split()[:3] == ["autotag", "local", "up"], (
            "the only documented background command is the local cloud"
        )
        background = subprocess.Popen(
            shlex.split(started),
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert background.stdout is not None
        banner = [background.stdout.readline() for _ in range(3)]
        assert "local FC API ready" in banner[-1], banner
    try:
        for block in blocks:
            if block.mode == "background":
                continue
            if block.mode == "alibaba":
                for line in block.text.splitlines():
                    if line.startswith("autotag "):
                        argv = [*shlex.split(line, comments=True), "--help"]
                        done = subprocess.run(
                            argv, cwd=clone, env=env, capture_output=True, text=True, timeout=60
                        )
                        assert done.returncode == 0, f"{block}: {line}\n{done.stdout}{done.stderr}"
                continue
            script = "\n".join(line for line in block.text.splitlines() if not line.startswith(NOT_RUN_HERE))
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", script],
                cwd=clone,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, (
                f"{block} failed ({done.returncode}):\n{script}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
            assert "Traceback" not in done.stdout + done.stderr, f"{block}:\n{done.stdout}{done.stderr}"
    finally:
        if background is not None:
            background.terminate()
            background.wait(300)
            busy_ports()  # the next document starts its own


def test_every_document_link_resolves() -> None:
    """Links between the documents, and the docs template.yml names, point at files that exist."""
    missing = []
    for document in DOCUMENTS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if "://" not in target and not (document.parent / target).exists():
                missing.append(f"{document.relative_to(ROOT)} -> {target}")
    for named in re.findall(r"docs/[\w.-]+\.md", (ROOT / "template.yml").read_text()):
        if not (ROOT / named).exists():
            missing.append(f"template.yml -> {named}")
    assert missing == []


def _command_and_options(words: list[str]) -> tuple[str, set[str], list[str]]:
    """The `autotag` subcommand the words name (as far as the CLI has it), the options it and the groups
    above it take, and the options the words use."""
    from autotag_cli.main import cli

    command: click.Command = cli
    path = ["autotag"]
    known = {o for p in cli.params for o in p.opts + p.secondary_opts} | {"--help"}
    for word in words[1:]:
        if not isinstance(command, click.Group) or word not in command.commands:
            break
        command = command.commands[word]
        path.append(word)
        known |= {o for p in command.params for o in p.opts + p.secondary_opts}
    used = [w.split("=", 1)[0] for w in words if w.startswith("--") and len(w) > 2]
    return " ".join(path), known, used


def test_every_option_the_documents_name_exists() -> None:
    """An `autotag ...` the prose or a usage block names uses only options its command has: an option
    renamed in the CLI (`--endpoint` became `--oss-endpoint` and `--fc-endpoint`) is renamed in the docs."""
    stale = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        spans = re.findall(r"`(autotag [^`\n]+)`", text)
        spans += re.findall(r"^(autotag [^\n]+?)\\?$", text, re.MULTILINE)  # usage lines and command blocks
        for span in spans:
            words = [w.strip("[]()|,;") for w in span.replace("...", " ").split()]
            name, known, used = _command_and_options(words)
            stale += [
                f"{document.relative_to(ROOT)}: {name} {option}" for option in used if option not in known
            ]
    assert stale == []


def test_a_document_that_starts_the_local_cloud_with_rules_plans_and_sweeps_with_them() -> None:
    """`autotag plan` and `autotag sweep` read the shipped rules unless told otherwise: after `autotag local
    up --rules R`, a documented plan without `--rules R` shows what those rules would not do (a tag the
    functions set, planned for removal), which is not what the document says it shows."""
    for document in DOCUMENTED:
        blocks = bash_blocks(document)
        started = [shlex.split(b.text.strip()) for b in blocks if b.mode == "background"]
        rules = [argv[argv.index("--rules") + 1] for argv in started if "--rules" in argv]
        if not rules:
            continue
        for block in blocks:
            if block.mode:
                continue
            for line in block.text.splitlines():
                for command in re.findall(r"autotag (?:plan|sweep) [^|';]*", line):
                    assert f"--rules {rules[0]}" in command, (
                        f"{block}: {command.strip()} plans without --rules {rules[0]}"
                    )
