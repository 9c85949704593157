#!/usr/bin/env python3
"""Renders a chat template as transformers does (jinja2 sandbox, trim_blocks, lstrip_blocks,
loopcontrols, raise_exception, strftime_now, its tojson), for tests/chat_templates.rs.

usage: render_chat_template.py TEMPLATE.jinja CONTEXT.json
CONTEXT: {"messages": [...], "add_generation_prompt": bool, "bos_token": str, "eos_token": str}
Prints the prompt (no newline added); on raise_exception prints "raised: MESSAGE" and exits 3.
"""
import json
import sys
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Raised(Exception):
    pass


def raise_exception(message):
    raise Raised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return datetime.now().strftime(fmt)


def main():
    src = open(sys.argv[1], encoding="utf-8").read()
    ctx = json.load(open(sys.argv[2], encoding="utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        out = env.from_string(src).render(**ctx)
    except Raised as e:
        sys.stdout.write(f"raised: {e}")
        sys.exit(3)
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
