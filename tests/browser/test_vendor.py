"""Each vendored file matches the SHA-256 listed in vendor/README.md, and every file is listed."""

import re

from harness import VENDOR, sha256_of


def listed() -> dict[str, str]:
    table = {}
    for line in (VENDOR / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"[0-9a-f]{64}", cells[5]):
            table[cells[0]] = cells[5]
    return table


def test_every_vendored_file_is_listed_with_its_sha256():
    table = listed()
    present = {p.name for p in VENDOR.iterdir() if p.is_file() and p.name != "README.md"}
    assert present == set(table), f"files {sorted(present)} vs listed {sorted(table)}"
    for name, digest in table.items():
        assert sha256_of(VENDOR / name) == digest, f"vendor/{name} does not match its SHA-256"


def test_axe_is_the_listed_version():
    head = (VENDOR / "axe.min.js").read_text()[:40]
    version = next(line for line in (VENDOR / "README.md").read_text().splitlines()
                   if line.startswith("| axe.min.js")).split("|")[3].strip()
    assert head.startswith(f"/*! axe v{version}"), head
