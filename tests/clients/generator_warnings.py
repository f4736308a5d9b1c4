"""Reads what `openapi-python-client generate` printed and fails on every warning but those
about binary bodies.

Usage: python3 generator_warnings.py GENERATOR_OUTPUT

The generator prints a banner, then one block per problem: `WARNING parsing <METHOD> <path>
within <tag>.` (an operation or one of its responses left out), `Unable to process schema
<name>:` (a schema and everything using it left out), and so on, each followed by its reason
and often the offending part of the spec as JSON. A block is tolerated only when it is about a
body the generator cannot type because it is binary: a response or request whose content is
`{"type": "string", "format": "binary"}` (a download, a backup archive, a multipart upload).
Anything else, including output this script does not recognize, is a failure: the client
would be missing a piece.
"""

import json
import re
import sys

# Lines the generator prints around the blocks, which say nothing by themselves.
BANNERS = (
    re.compile(r"^Generating "),
    re.compile(r"^Warning\(s\) encountered while generating"),
    re.compile(r"^If you believe this was a mistake"),
)
BLOCK_START = re.compile(r"^(WARNING|ERROR|Error|Unable to|Skipping)\b")


def blocks(text):
    """The problem blocks of the output, each a list of lines; unrecognized lines outside a
    block are blocks of their own."""
    found, current = [], None
    for line in text.splitlines():
        if any(banner.match(line) for banner in BANNERS):
            current = None
            continue
        if BLOCK_START.match(line):
            current = [line]
            found.append(current)
        elif current is not None:
            current.append(line)
        elif line.strip():
            found.append([line])
    return found


def spec_part(lines):
    """The JSON the block quotes (the response, body or schema concerned), or None."""
    for start, line in enumerate(lines):
        if line.startswith("{"):
            try:
                return json.loads("\n".join(lines[start:]))
            except ValueError:
                return None
    return None


def is_binary(schema):
    return isinstance(schema, dict) and schema.get("format") == "binary"


def binary_body(lines):
    """Whether the block is about a body whose content is binary."""
    text = "\n".join(lines)
    part = spec_part(lines)
    if not isinstance(part, dict):
        return False
    content = part.get("content", {})
    unsupported = re.search(r"Unsupported content_type (\S+?)\)", text)
    if unsupported:
        return is_binary(content.get(unsupported.group(1), {}).get("schema"))
    multipart = content.get("multipart/form-data", {}).get("schema", {})
    properties = multipart.get("properties", {}).values() if isinstance(multipart, dict) else []
    return any(is_binary(p) or is_binary(p.get("items")) for p in properties)


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    tolerated, failures = [], []
    for block in blocks(text):
        (tolerated if binary_body(block) else failures).append(block)
    for block in tolerated:
        print("tolerated (binary body): " + block[0].strip())
    for block in failures:
        print("\n".join(block).rstrip())
        print()
    print(f"{len(failures)} warnings, {len(tolerated)} about binary bodies (tolerated)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
