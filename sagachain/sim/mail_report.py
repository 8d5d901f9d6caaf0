"""What a run's mail measured: the ``mail`` section of results.json, its files, its table.

Three questions, one part each:

- ``delivery``: how long from sending a message until the first, and until
  every, target device read it (virtual ms), by the role of the envelope
  (``dm``, ``mirror``, ``group``, ``handover``, ``enclave``);
- ``mailboxes`` and ``series``: what each retention policy keeps, over time
  (live envelopes and bytes), and how long an envelope stays before its purge;
- ``observer``: what the public chain shows of the traffic, which is all an
  outsider has: who wrote to which mailbox, when, how big, which group
  envelopes share a conversation, and when each device acknowledged (a read
  receipt). ``checks.mail_plaintext_found`` counts message texts, planted
  canaries and conversation keys found in the public bytes (chain file,
  results.json, the observer log): it must be 0.

Files: ``DIR/mail_observer.csv`` (one row per envelope, acknowledgement and
purge the chain shows) and ``DIR/plots/mail_size.png``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from sagachain.core.mailbox import envelope_id, envelope_of
from sagachain.core.roster import BURN_ON_READ
from sagachain.sim.metrics import spread

if TYPE_CHECKING:
    from sagachain.sim.mail import Box, Letter, MailDriver

OBSERVER_NAME = "mail_observer.csv"
OBSERVER_COLUMNS = ("event", "block_time_ms", "shard", "entry", "tx", "signer", "sender", "mailbox", "recipient", "seq", "size", "note")
RECIPIENT_ROLES = ("dm", "group", "enclave")  # envelopes that carry a message to someone else
ROLES = ("dm", "mirror", "group", "handover", "enclave")
ENCLAVE_BOXES = "enclave"  # the policy column of enclaves' mailboxes, whatever their retention


def policy_of(box: Box) -> str:
    return box.retention if box.manager is not None else ENCLAVE_BOXES


def mail_json(driver: MailDriver, end: int) -> dict[str, Any]:
    """The ``mail`` section of results.json."""
    driver.sample(end)
    letters = [x for x in driver.letters if not x.failed]
    counts = driver.counts
    return {
        "clients": {"poll_ms": driver.poll_ms, "online": driver.online, "devices": len(driver.clients)},
        "messages": {k: counts[f"messages_{k}"] for k in ("dm", "group", "enclave")} | {"mirrored": counts["mirrored"]},
        "transactions": {k.removesuffix("_txs"): v for k, v in sorted(counts.items()) if k.endswith("_txs")},
        "failed_transactions": {k.removeprefix("failed_"): v for k, v in sorted(counts.items()) if k.startswith("failed_")},
        "never_final": sum(1 for p in driver.by_tx.values()),
        "resent": counts["resent"],
        "delivery": _delivery(driver, letters),
        "devices": {
            "added": counts["device_add"],
            "removed": counts["device_remove"],
            "group_keys_handed": counts["group_keys"],
            "older_envelopes_probed": sum(c.probes for c in driver.clients.values()),
            "older_envelopes_read": sum(c.breaches for c in driver.clients.values()),
        },
        "purges": dict(sorted(driver.purges.items())),
        "residence_ms": {policy: spread(values) for policy, values in sorted(driver.residence.items())},
        "mailboxes": {box.name: _box(driver, box) for box in driver.boxes.values() if box.written},
        "series": _series(driver),
        "series_by_mailbox": {
            box.name: [[row["t_ms"], *row["boxes"][box.name]] for row in driver.series] for box in driver.boxes.values() if box.written
        },
        "observer": observer_summary(driver),
    }


def _latencies(driver: MailDriver, letters: list[Letter]) -> dict[str, Any]:
    first, every, commit = [], [], []
    incomplete = 0
    for letter in letters:
        sent = driver.messages[letter.message].submitted
        if letter.final is not None:
            commit.append(letter.final - sent)
        if letter.opened:
            first.append(min(letter.opened.values()) - sent)
        if letter.targets and set(letter.opened) == set(letter.targets):
            every.append(max(letter.opened.values()) - sent)
        elif letter.final is not None:
            incomplete += 1
    return {"commit": spread(commit), "first_device": spread(first), "all_devices": spread(every), "not_read_by_all": incomplete}


def _delivery(driver: MailDriver, letters: list[Letter]) -> dict[str, Any]:
    counts = driver.counts
    return {
        "latency_ms": _latencies(driver, [x for x in letters if x.role in RECIPIENT_ROLES]),
        "by_role": {role: _latencies(driver, [x for x in letters if x.role == role]) for role in ROLES if any(x.role == role for x in letters)},
        "opened": counts["opened"],
        "unreadable_targets": counts["unreadable"],
        "expired_unread": counts["expired_unread"],
        "garbled": counts["garbled"],
        "undeliverable": counts["undeliverable"],
        "syncs": counts["syncs"],
    }


def _box(driver: MailDriver, box: Box) -> dict[str, Any]:
    return {
        "policy": policy_of(box),
        "retention": box.retention,
        "written": box.written,
        "bytes_written": box.bytes_written,
        "purged": box.purged,
        "live_at_end": box.live,
        "bytes_at_end": box.bytes_live,
        "peak_live": box.peak,
        "peak_bytes": box.peak_bytes,
        "waiting_for_removed_device": _stuck(driver, box),
    }


def _stuck(driver: MailDriver, box: Box) -> int:
    """Burn-on-read envelopes that can never go: a target device was dropped before it acknowledged,
    and a dropped device cannot acknowledge any more (MBX-2)."""
    head = driver.head(box.id)
    if head is None or box.retention != BURN_ON_READ:
        return 0
    registered = {d.id for d in head.devices}
    stuck = 0
    for seq in range(1, head.next_seq):
        record = envelope_of(driver.chain.objects.get(envelope_id(box.id, seq)))
        if record is not None and not record.purged and set(record.targets) - set(record.acked) - registered:
            stuck += 1
    return stuck


def _series(driver: MailDriver) -> dict[str, list[list[int]]]:
    """Per policy: [t_ms, live envelopes, live bytes], summed over its mailboxes."""
    policies = {box.name: policy_of(box) for box in driver.boxes.values()}
    out: dict[str, list[list[int]]] = {p: [] for p in sorted(set(policies.values()))}
    for row in driver.series:
        sums: dict[str, list[int]] = {p: [0, 0] for p in out}
        for name, (live, size) in row["boxes"].items():
            sums[policies[name]][0] += live
            sums[policies[name]][1] += size
        for policy, (live, size) in sums.items():
            out[policy].append([row["t_ms"], live, size])
    return {p: rows for p, rows in out.items() if any(r[1] or r[2] for r in rows)}


def observer_summary(driver: MailDriver) -> dict[str, Any]:
    """What an outsider reads off the chain, from the observer log alone."""
    rows = driver.observed
    envelopes = [r for r in rows if r["event"] == "envelope"]
    pairs = Counter((r["sender"], r["recipient"]) for r in envelopes)
    groups: dict[str, set[str]] = defaultdict(set)
    for r in envelopes:
        if r["note"].startswith("group "):
            groups[r["note"].removeprefix("group ")].add(r["recipient"])
    by_tx: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in envelopes:
        by_tx[r["tx"]].append(r)
    mirrored = sum(1 for batch in by_tx.values() if len(batch) == 2 and {r["recipient"] for r in batch} >= {batch[0]["signer"]})
    arrived = {(r["mailbox"], r["seq"]): r["block_time_ms"] for r in envelopes}
    receipts = [r["block_time_ms"] - arrived[(r["mailbox"], r["seq"])] for r in rows if r["event"] == "ack" and (r["mailbox"], r["seq"]) in arrived]
    direct = [r["size"] for r in envelopes if not r["note"].startswith("group ")]
    group = [r["size"] for r in envelopes if r["note"].startswith("group ")]
    return {
        "envelopes": len(envelopes),
        "by_entry": dict(sorted(Counter(r["entry"] for r in envelopes).items())),
        "acks": sum(1 for r in rows if r["event"] == "ack"),
        "purges": sum(1 for r in rows if r["event"] == "purge"),
        "sender_recipient_pairs": len(pairs),
        "top_pairs": [{"sender": s, "recipient": r, "envelopes": n} for (s, r), n in sorted(pairs.items(), key=lambda it: (-it[1], it[0]))[:8]],
        "conversations_linked": len(groups),
        "conversation_sizes": dict(sorted(Counter(len(members) for members in groups.values()).items())),
        "mirrored_sends_visible": mirrored,
        "size_bytes": {"direct": spread(direct), "group": spread(group)},
        "ack_after_arrival_ms": spread(receipts),
        "enclave_senders": sorted({f"{r['sender']} on {r['shard']} -> {r['mailbox']}" for r in envelopes if r["entry"] == "mixed"}),
    }


def observer_csv(driver: MailDriver) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=OBSERVER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(driver.observed)
    return out.getvalue()


def write_mail(driver: MailDriver, out: Path, end: int, plots: bool) -> dict[str, Any]:
    """Write the observer log (and the plot), return the ``mail`` section of results.json."""
    section = mail_json(driver, end)
    (out / OBSERVER_NAME).write_text(observer_csv(driver))
    if plots:
        draw_mail_size(out / "plots" / "mail_size.png", section["series"])
    return section


def mail_secrets(driver: MailDriver) -> list[bytes]:
    """What no public byte may contain: every message text, its canary, every conversation key."""
    found = {m.canary.encode() for m in driver.messages} | {m.text.encode() for m in driver.messages if len(m.text) >= 6}
    found |= {key for key in driver.secrets} | {key.hex().encode() for key in driver.secrets}
    return sorted(found)


def mail_plaintext_in(driver: MailDriver, public: bytes) -> list[bytes]:
    return [secret for secret in mail_secrets(driver) if secret in public]


def check_mail(driver: MailDriver, out: Path, chain_path: Path, results: bytes) -> int:
    """How many mail secrets occur in the chain file, the observer log and ``results`` (must be 0)."""
    public = chain_path.read_bytes() + (out / OBSERVER_NAME).read_bytes() + results
    return len(mail_plaintext_in(driver, public))


def draw_mail_size(path: Path, series: dict[str, list[list[int]]]) -> None:
    """Live envelopes and live bytes per retention policy over virtual time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.4), sharex=True)
    for policy, rows in series.items():
        xs = [t / 1000 for t, _, _ in rows]
        top.plot(xs, [n for _, n, _ in rows], marker=".", label=policy)
        bottom.plot(xs, [b / 1024 for _, _, b in rows], marker=".", label=policy)
    top.set_title("Mailbox contents by retention policy (MBX-2)")
    top.set_ylabel("live envelopes")
    bottom.set_ylabel("live KiB")
    bottom.set_xlabel("virtual time (s)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    if series:
        top.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ms(spread: dict[str, Any]) -> str:
    return "-" if not spread["count"] else f"{spread['p50']} / {spread['p99']}"


def mail_table(summary: dict[str, Any]) -> Table:
    """The compact table ``sagachain run`` prints after the summary when the run had mail."""
    mail = summary["mail"]
    delivery, observer = mail["delivery"], mail["observer"]
    table = Table(title="mail", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    messages = mail["messages"]
    rows = [
        ("messages dm / group / enclave (mirrored)", f"{messages['dm']} / {messages['group']} / {messages['enclave']} ({messages['mirrored']})"),
        ("read by first device p50 / p99", _ms(delivery["latency_ms"]["first_device"]) + " ms"),
        ("read by every device p50 / p99", _ms(delivery["latency_ms"]["all_devices"]) + " ms"),
        ("not read by every target device", str(delivery["latency_ms"]["not_read_by_all"])),
        ("expired unread (TTL) / unreadable targets", f"{delivery['expired_unread']} / {delivery['unreadable_targets']}"),
        ("purges " + " / ".join(mail["purges"]) if mail["purges"] else "purges", " / ".join(str(n) for n in mail["purges"].values()) or "0"),
    ]
    for policy, rows_ in mail["series"].items():
        peak = max(r[1] for r in rows_)
        rows.append((f"live envelopes, {policy}: peak / end", f"{peak} / {rows_[-1][1]}"))
    for policy, figures in mail["residence_ms"].items():
        rows.append((f"kept before purge, {policy} p50", f"{figures['p50']} ms"))
    devices = mail["devices"]
    rows.append(("later devices: older envelopes read / probed", f"{devices['older_envelopes_read']} / {devices['older_envelopes_probed']}"))
    rows.append(("observer: envelopes / pairs / linked groups", f"{observer['envelopes']} / {observer['sender_recipient_pairs']} / {observer['conversations_linked']}"))
    rows.append(("observer: read receipts (ack after arrival p50)", f"{observer['acks']} ({observer['ack_after_arrival_ms']['p50']} ms)"))
    found = summary.get("checks", {}).get("mail_plaintext_found")
    rows.append(("message plaintext found in public data", "-" if found is None else str(found)))
    for name, value in rows:
        table.add_row(name, value)
    return table
