"""Mailbox: how fast do end-to-end encrypted DMs arrive, what does each retention policy keep, and what does an outsider see?

Question: six identities, two devices each, two per retention policy
(``ann``, ``ben``: burn on read; ``cat``, ``dan``: TTL; ``eve``, ``fay``:
permanent), send each other DMs (some mirrored into the sender's own
mailbox, MBX-3) and group DMs (a conversation key handed over in direct
envelopes, then one group envelope in every participant's own mailbox).
Mid-run ``eve`` registers a new device and ``ann`` drops one. The enclave
``alpha`` sends data to the enclave ``beta`` through ``beta``'s public
mailbox (CMI-4): a mixed transaction on ``alpha``'s shard. How long until a
message is read by the first and by every device of its recipient, how
much does each policy keep over time, and what does the public chain show
of all this?

What it varies (``--set NAME=VALUE``, or a sweep's ``--grid``):

- ``messages`` (60): DMs and group DMs, sent at random times in the first
  half of the run; ``group_share`` (0.2) of them group DMs, ``mirror_share``
  (0.3) of the DMs mirrored.
- ``ttl_ms`` (8000): the TTL of ``cat``'s and ``dan``'s mailboxes.
- ``online`` (0.8) and ``poll_ms`` (2000): each device is online in a poll
  slot with that chance; online it syncs when notified of an envelope
  (MBX-4), offline at its first online poll.
- ``duration`` (40000) virtual ms.

How to read the result::

    sagachain run scenarios/mailbox.py --seed 1 --out out/mail
    sagachain audit out/mail/chain.sgc

The ``mail`` table after the summary, and ``mail`` in ``results.json``
(docs/SIMULATOR.md, "Mail"), give the delivery latency (sending until the
first and until every target device read it; p50 and p99, by envelope role
in ``mail.delivery.by_role``), TTL envelopes that expired unread, purges
per policy and how long each policy kept an envelope (``residence_ms``),
and the live envelopes and bytes per policy over time (``mail.series``,
drawn in ``plots/mail_size.png``): burn on read stays low (an envelope
goes once every target device acknowledged it), TTL follows the traffic
and falls one TTL after it stops, permanent only grows.
``devices.older_envelopes_read`` must be 0: ``eve``'s new device reads
nothing sent before it was registered. ``mailboxes.ann.mailbox.
waiting_for_removed_device`` counts burn-on-read envelopes that can never
go, because a target device was dropped before it acknowledged them.

``mail.observer`` and ``out/mail/mail_observer.csv`` are the outsider's
view, read off the chain: every envelope's sender, mailbox, size and block
time; the sender-recipient pairs; group envelopes linked into conversations
by their public conversation id; mirrored sends; every acknowledgement, a
read receipt with its time; and ``alpha``'s enclave account writing into
``beta``'s mailbox from ``alpha``'s shard. ``checks.mail_plaintext_found``
is 0: no message text, planted canary or conversation key is in any public
byte. The audit is well-formed, MBX-1, MBX-2 and MBX-4 included.
"""

from sagachain.core.roster import BURN_ON_READ, PERMANENT, TTL
from sagachain.sim import Scenario

POLICIES = {"ann": BURN_ON_READ, "ben": BURN_ON_READ, "cat": TTL, "dan": TTL, "eve": PERMANENT, "fay": PERMANENT}


def build(s: Scenario) -> None:
    duration = s.param("duration", 40_000)
    ttl_ms = s.param("ttl_ms", 8_000)
    s.configure(duration=duration, block_interval=500, latency=40, jitter=10)
    s.mail_clients(poll_ms=s.param("poll_ms", 2_000), online=s.param("online", 0.8))
    s.public_shards(2)
    s.enclave("alpha", shards=1, nodes=4)
    s.enclave("beta", shards=1, nodes=4)
    s.enclave_account("alpha", "alpha_agent")
    s.account("relay", balance=10_000_000)  # pays alpha's mixed transaction and beta's acknowledgements
    for name, policy in POLICIES.items():
        s.identity(name, devices=2, balance=10_000_000, retention=policy, ttl_ms=ttl_ms, spare_devices=1 if name == "eve" else 0)

    half = duration // 2
    s.mail_traffic(500, half, s.param("messages", 60), group_share=s.param("group_share", 0.2), mirror_share=s.param("mirror_share", 0.3))
    s.device(half // 2, "eve", "add")
    s.device(half // 2 + 1_000, "ann", "remove")
    s.dm(half // 2 + 3_000, "fay", "eve", "after the new device: this one eve.dev2 reads too")
    s.enclave_mail(half // 3, "alpha", "beta", "alpha to beta: quarterly figures attached", payer="relay")
