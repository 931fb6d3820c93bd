"""Microbenchmark: what normalizing costs against ``msgspec.json.decode`` of the same body.

    .venv/bin/python -m bench.normalize            # one run, a Markdown table on stdout

For each fixture family it times, in one process and one run, ``msgspec.json.decode(body)``
and the provider's normalizer on the same bytes (which includes that decode), taking turns,
and prints the ratio (DESIGN §11 asks at most 3x for the Chatwoot ``message_created`` the
load bench posts) and which path read the body (the fast one, or the tolerant fallback).
Then it normalizes 1 MiB adversarial bodies (duplicate keys, huge lists, padded keys, lone
surrogates) once each and prints how long each took (the bound is 50 ms). Bounded: about
half a second per family, a few seconds in all; loopback-free, nothing written.

It needs only ``relay.providers.NORMALIZERS`` and ``Inbound``, which every version has
(the fast paths are looked up if present), so the same file measures an older checkout
(``PYTHONPATH=<checkout> python -m ...``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from relay.providers import NORMALIZERS, Inbound

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
BATCH_S = 0.002
ROUNDS = 100
"""100 turns of ~2 ms batches each: about 0.4 s a family."""
MIB = 1 << 20


def compact(path: str) -> bytes:
    """A fixture as a provider sends it: compact JSON, raw UTF-8."""
    value = json.loads((FIXTURES / path).read_text())
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


FAMILIES: list[tuple[str, str, str | None]] = [
    ("chatwoot message_created (the load bench's body)", "chatwoot/message_created.json", None),
    ("chatwoot message_created, image", "chatwoot/message_created_attachment.json", None),
    ("chatwoot message_created, template", "chatwoot/message_created_template_params.json", None),
    ("chatwoot message_updated, CSAT", "chatwoot/message_updated_csat_submitted.json", None),
    ("chatwoot message_created, white-label keys", "chatwoot/whitelabel_extra_keys.json", None),
    ("chatwoot conversation_updated", "chatwoot/conversation_updated.json", None),
    ("chatwoot contact_updated", "chatwoot/contact_updated.json", None),
    ("plugchat ReceivedCallback text", "plugchat/receiveMessage/text.json", "receiveMessage"),
    (
        "plugchat ReceivedCallback order",
        "plugchat/receiveMessage/order_cart.json",
        "receiveMessage",
    ),
    (
        "plugchat MessageStatusCallback",
        "plugchat/messageStatus/read_multiple_ids.json",
        "messageStatus",
    ),
    (
        "plugchat finishAttendance",
        "plugchat/finishAttendance/both_category_formats.json",
        "finishAttendance",
    ),
    ("plugchat startAttendance", "plugchat/startAttendance/realistic.json", "startAttendance"),
    (
        "plugchat DeliveryCallback, error",
        "plugchat/messageDeliveryError/delivery_error.json",
        "messageDeliveryError",
    ),
    (
        "plugchat DisconnectedCallback",
        "plugchat/whenDisconnecting/disconnected.json",
        "whenDisconnecting",
    ),
    *(
        (
            f"plugchat ReceivedCallback {name}",
            f"plugchat/receiveMessage/{name}.json",
            "receiveMessage",
        )
        for name in ("image", "audio", "location", "contact_card", "poll", "buttons_response")
    ),
    (
        "plugchat ReceivedCallback template",
        "plugchat/receiveMessage/template_image_header.json",
        "receiveMessage",
    ),
]


def per_call(*runs: Callable[[], Any]) -> list[float]:
    """Seconds per call of each run: the best of many small batches, the runs taking turns
    so that a load spike on a shared machine hits them alike (the ratio is what counts)."""
    batches = []
    for run in runs:
        start = time.perf_counter()
        run()
        once = max(time.perf_counter() - start, 1e-7)
        batches.append(max(1, int(BATCH_S / once)))
    best = [float("inf")] * len(runs)
    gc.collect()
    for _ in range(ROUNDS):
        for i, (run, batch) in enumerate(zip(runs, batches, strict=True)):
            start = time.perf_counter()
            for _ in range(batch):
                run()
            best[i] = min(best[i], (time.perf_counter() - start) / batch)
    return best


def normalizer(provider: str, body: bytes, kind: str | None) -> Callable[[], Any]:
    normalize = NORMALIZERS[provider]
    inbound = Inbound(source="bench", body=body, received_at="2026-01-01T00:00:00.000Z", kind=kind)

    def run() -> Any:
        try:
            return normalize(inbound)
        except ValueError:  # MalformedBody / Unmappable: refused is a result too
            return None

    return run


def adversarial(size: int = MIB) -> list[tuple[str, str, bytes, str | None]]:
    MIB = size
    copies = MIB // 24
    dup = ",".join(f'"operatorReport ": "r{i}"' for i in range(copies))
    categories = [{"categoryId": i, "categoryName": f"c{i}", "itemId": i} for i in range(MIB // 56)]
    ids = [f"3EB0{i:012d}" for i in range(MIB // 20)]
    padded = {f" k{i} ": i for i in range(MIB // 14)}
    attachments = [{"file_type": "contact", "fallback_title": "5544"}] * (MIB // 48)
    text = "oi \\ud83d " * (MIB // 12)
    chat = {
        f"m{i}": {"messageId": f"m{i}", "momment": 1784045112448 + i, "text": {"message": "ok"}}
        for i in range(MIB // 90)
    }
    return [
        (
            "duplicate keys (attendance)",
            "plugchat",
            f'{{"attendance": {{"attendanceNumber": 1, {dup}}}}}'.encode(),
            "finishAttendance",
        ),
        (
            "attendanceCategories list",
            "plugchat",
            json.dumps(
                {"attendance": {"attendanceNumber": 1, "attendanceCategories": categories}}
            ).encode(),
            "finishAttendance",
        ),
        (
            "transcript of short messages",
            "plugchat",
            json.dumps({"attendance": {"attendanceNumber": 1}, "chat": chat}).encode(),
            "finishAttendance",
        ),
        (
            "status ids[] (too many events)",
            "plugchat",
            json.dumps({"type": "MessageStatusCallback", "status": "READ", "ids": ids}).encode(),
            "messageStatus",
        ),
        (
            "padded keys, every lookup misses",
            "chatwoot",
            json.dumps({"event": "message_created", "message_type": "incoming", **padded}).encode(),
            None,
        ),
        (
            "contact attachments of one card",
            "chatwoot",
            json.dumps(
                {
                    "event": "message_created",
                    "id": 1,
                    "message_type": "incoming",
                    "attachments": attachments,
                }
            ).encode(),
            None,
        ),
        (
            "lone surrogates in a text",
            "chatwoot",
            (
                '{"event":"message_created","id":1,"message_type":"incoming","content":"'
                + text
                + '"}'
            ).encode(),
            None,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.normalize")
    parser.add_argument("--adversarial-bytes", type=int, default=MIB, help="size of those bodies")
    parser.add_argument("--only-adversarial", action="store_true")
    args = parser.parse_args()
    if not args.only_adversarial:
        families()
    print(f"| {args.adversarial_bytes // 1024} KiB adversarial body | bytes | normalize ms |")
    print("|---|---:|---:|")
    for name, provider, body, kind in adversarial(args.adversarial_bytes):
        run = normalizer(provider, body, kind)
        best = float("inf")
        for _ in range(3):
            gc.collect()
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
            if best > 5:  # quadratic: one run says enough
                break
        print(f"| {name} | {len(body)} | {best * 1e3:.1f} |", flush=True)


def fast_path_reads(provider: str, body: bytes, kind: str | None) -> str:
    """Which path read the body: ``fast``, ``tolerant`` (the fast one declined) or ``-``
    (this checkout has no fast path for the provider)."""
    try:
        from relay.providers import fast
    except ImportError:
        return "-"
    declined = (*fast.FALLBACK_ERRORS, *([fast.Fallback] if hasattr(fast, "Fallback") else []))
    try:
        module = importlib.import_module(f"relay.providers.{provider}.fast")
    except ImportError:
        if hasattr(fast, "Fallback"):
            return "-"
        # one normalizer, no fast module (PlugChat since the fourth 2026-12-02 session):
        # the tolerant parse reads only what msgspec refuses
        try:
            msgspec.json.decode(body)
        except declined:
            return "tolerant"
        return "fast"
    inbound = Inbound(source="bench", body=body, received_at="2026-01-01T00:00:00.000Z", kind=kind)
    try:
        module.normalize_fast(inbound)
    except declined:
        return "tolerant"
    except ValueError:
        return "refused"
    return "fast"


def families() -> None:
    print("| family | body bytes | msgspec decode µs | normalize µs | ratio | read by |")
    print("|---|---:|---:|---:|---:|---|")
    for name, path, kind in FAMILIES:
        if not (FIXTURES / path).exists():
            continue
        body = compact(path)
        provider = path.split("/")[0]
        decode, normalize = per_call(
            lambda body=body: msgspec.json.decode(body),  # type: ignore[misc]
            normalizer(provider, body, kind),
        )
        print(
            f"| {name} | {len(body)} | {decode * 1e6:.1f} | {normalize * 1e6:.1f} "
            f"| {normalize / decode:.1f}x | {fast_path_reads(provider, body, kind)} |"
        )
    print(flush=True)


if __name__ == "__main__":
    main()
