#!/usr/bin/env python3
"""Drives `vkgraph serve` with the real `openai` client (tests/serve.rs runs it).

usage: openai_client.py HOST:PORT API_KEY
Exits non-zero with a message on the first check that fails.
"""
import concurrent.futures
import sys

import openai
from openai import OpenAI


def main():
    addr, key = sys.argv[1], sys.argv[2]
    c = OpenAI(base_url=f"http://{addr}/v1", api_key=key, max_retries=0)
    model = c.models.list().data[0].id
    msgs = [{"role": "user", "content": "Say something."}]

    r = c.chat.completions.create(model=model, messages=msgs, max_tokens=8, temperature=0)
    assert r.object == "chat.completion", r
    assert r.choices[0].message.role == "assistant", r
    text = r.choices[0].message.content
    assert r.usage.completion_tokens >= 1 and r.usage.prompt_tokens > 0, r.usage

    # Streamed: the same text, chunk by chunk, with a finish_reason at the end.
    parts, finish = [], None
    for ch in c.chat.completions.create(model=model, messages=msgs, max_tokens=8,
                                        temperature=0, stream=True):
        if ch.choices and ch.choices[0].delta.content:
            parts.append(ch.choices[0].delta.content)
        if ch.choices and ch.choices[0].finish_reason:
            finish = ch.choices[0].finish_reason
    assert "".join(parts) == text, (parts, text)
    assert finish in ("stop", "length"), finish

    # Four requests at once, each equal to its solo greedy result.
    prompts = [f"Count to {i}:" for i in range(4)]

    def one(p):
        return c.completions.create(model=model, prompt=p, max_tokens=6,
                                    temperature=0).choices[0].text

    solo = [one(p) for p in prompts]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        together = list(ex.map(one, prompts))
    assert together == solo, (together, solo)

    # Misuse: typed client errors, and the server keeps serving.
    bad = OpenAI(base_url=f"http://{addr}/v1", api_key="wrong", max_retries=0)
    try:
        bad.models.list()
        raise AssertionError("a wrong API key was accepted")
    except openai.AuthenticationError:
        pass
    for kwargs in ({"max_tokens": 100000}, {"messages": [{"role": "user", "content": "x " * 400}]}):
        try:
            args = {"model": model, "messages": msgs, "max_tokens": 4, **kwargs}
            c.chat.completions.create(**args)
            raise AssertionError(f"accepted {list(kwargs)}")
        except openai.BadRequestError:
            pass
    r = c.chat.completions.create(model=model, messages=msgs, max_tokens=2, temperature=0)
    assert r.choices[0].message.role == "assistant"
    print("openai client: all checks passed")


if __name__ == "__main__":
    main()
