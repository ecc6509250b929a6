#!/usr/bin/env python3
"""Checks the README's layout map against the tree: every tracked folder (two levels deep) is named,
and every folder it names at the start of a line exists."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def tracked_folders():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    folders = set()
    for path in files.stdout.split():
        parts = pathlib.PurePosixPath(path).parts[:-1]
        for depth in range(1, min(len(parts), 2) + 1):
            folders.add("/".join(parts[:depth]))
    return folders


def layout_block():
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Layout\n.*?^```\n(.*?)^```", readme, re.S | re.M)
    if not match:
        sys.exit("README.md has no '## Layout' section with a code block")
    return match.group(1)


def main():
    block = layout_block()
    entries = set(re.findall(r"^([\w.][\w./-]*)/ ", block, re.M))
    mentioned = set(re.findall(r"([\w.][\w./-]*)/", block))
    problems = [f"{e}/ does not exist" for e in sorted(entries) if not (ROOT / e).is_dir()]
    for folder in sorted(tracked_folders()):
        parent, _, name = folder.rpartition("/")
        # A subfolder may be named inside its parent's line (fuzz/'s dicts/).
        inside = any(e.startswith(folder + "/") for e in entries)  # src/ through src/core/
        if folder not in entries and not inside and not (parent in entries and name in mentioned):
            problems.append(f"{folder}/ is not named")
    if problems:
        sys.exit("README.md's layout map is out of date: " + "; ".join(problems))
    print(f"README layout map: {len(entries)} entries, all {len(tracked_folders())} tracked folders named")


if __name__ == "__main__":
    main()
