"""Vendor the SPARQL query editor (YASGUI) from its npm package into ``server/static/vendor/``.

``python -m server.vendor`` (run by ``make``): downloads the pinned package tarball from the npm
registry, checks its published sha512 integrity, and extracts the built bundle, its stylesheet and
its licence. Without it (offline installs) ``/sparql`` serves a plain query form instead.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

PACKAGE = "@triply/yasgui"
VERSION = "4.2.28"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/yasgui-{VERSION}.tgz"
INTEGRITY = "sha512-HN1neZqERSGoDyk/Fg40nI+F0tHnaBxjqizhN0mur2Kj0oJsklBsFMRk/M+wW+ohy8dSEn7AgX3H0pPrV/wmVg=="
FILES = {
    "package/build/yasgui.min.js": "yasgui.min.js",
    "package/build/yasgui.min.css": "yasgui.min.css",
    "package/build/yasgui.min.js.LICENSE.txt": "LICENSE.txt",
}
TARGET = Path(__file__).parent / "static" / "vendor" / "yasgui"


def vendor(target: Path = TARGET, registry_url: str = TARBALL) -> Path:
    """Fetch, verify and extract; returns the directory holding the files."""
    if (target / "VERSION").exists() and (target / "VERSION").read_text().strip() == VERSION:
        return target
    with urllib.request.urlopen(registry_url, timeout=60) as resp:
        data = resp.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        raise RuntimeError(f"{PACKAGE}@{VERSION}: integrity mismatch ({digest} != {INTEGRITY})")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member, name in FILES.items():
            extracted = tar.extractfile(member)
            if extracted is None:
                raise RuntimeError(f"{PACKAGE}@{VERSION}: {member} missing from the package")
            tmp = target / f".{name}.tmp"
            tmp.write_bytes(extracted.read())
            os.replace(tmp, target / name)
    (target / "VERSION").write_text(VERSION + "\n")
    return target


def main() -> int:
    try:
        print(f"{PACKAGE}@{VERSION} in {vendor()}")
    except (OSError, RuntimeError) as exc:
        print(f"YASGUI not vendored ({exc}); /sparql will serve a plain query form", file=sys.stderr)
        return 0 if "--best-effort" in sys.argv else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
