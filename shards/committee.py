"""One committee member's consensus on its shard's next block (SH-1), as a pure state machine.

The trio node (and the simulator) drive it: a message arrives, a timer is due,
the driver has built a block. Each call returns actions: messages to
broadcast or send, a block to build, a final block, evidence of misbehaviour,
a message refused and why, the time of the next timer. The machine does no
I/O, reads no clock (``now`` comes in) and draws no random numbers, so a seed
replays a run exactly.

How a height is decided (the rounds of Tendermint, Buchman, Kwon and
Milosevic 2018, in our words). ``n`` members, quorum ``q = floor(2n/3) + 1``;
up to ``f = n - q`` members may crash or lie. Heights are decided one after
the other, each in rounds 0, 1, 2, ... whose proposer is
``committee[(height + round) % n]``, so a silent proposer costs one round.

1. *Propose.* The round's proposer broadcasts a block: the block it saw a
   prevote quorum for in an earlier round (its *valid* block, with that
   round as ``valid_round``) or else a new one, which it asks the driver for
   (``NeedBlock``; the driver answers with :meth:`CommitteeMachine.propose`).
2. *Prevote.* A member prevotes the proposal when the driver's ``validate``
   accepts the block and the member is not locked on another block, or the
   proposal's ``valid_round`` is at least its lock's round and the member saw
   a prevote quorum for that block in that round (so an old lock gives way
   only to newer evidence). Otherwise it prevotes nil, also when the
   proposal does not come in time.
3. *Precommit.* On a prevote quorum for the proposal in its round the member
   locks the block and precommits it; on a prevote quorum for nil, or when
   the prevotes stay split past a timeout, it precommits nil.
4. *Decide.* A precommit quorum for a block in any round decides it; a
   precommit quorum that stays split past a timeout starts the next round.
   Timeouts grow with the round, so once the network behaves, rounds
   become long enough for a quorum to hear each other.

Two quorums share more than ``f`` members, so at least one honest member;
honest members lock what they precommit and unlock only for a newer prevote
quorum, which is why no two blocks are decided at one height.

Signatures and the certificate. Proposals, prevotes and precommits sign a
digest naming their kind, shard, height and round, so none can be replayed
as another kind or in another round (round binding is what locking relies
on). The quorum certificate SH-1 asks for (``Block.qc``) is made of *commit*
votes: signatures of exactly ``block.hash``. A member signs one only after it
decided the block, and the producer signs its own block when it proposes it
(``producer_vote``, which travels with the block so a producer that crashes
after proposing still appears in the qc, as SH-1 requires). Bare-hash
signatures name no round; had members given them at precommit time, an
honest member that precommitted ``A`` in one round and ``B`` later (a lawful
change of lock) would let a liar assemble SH-1 certificates for both. Since
honest members sign only the one decided block (besides producers their own
blocks, at most ``1 + f < q`` signatures for any other block), any
certificate of ``q`` signatures names the decided block; a member that
receives one (``Decision``) takes it as the decision.

A member that decided broadcasts its commit and, once it holds ``q`` of them
(the producer's among them), reports ``Decided(block with qc)`` and waits for
the driver's :meth:`CommitteeMachine.next_height`, called once the driver
stored the block: the validity of the next height's blocks depends on it.
Messages for later heights wait in a bounded buffer until then; a message for
an earlier height is answered with that height's final block, so a member
that missed the decision catches up. Messages can be lost, so every
``resend`` the member sends again its messages of the last two rounds; a
re-proposal travels with the prevote quorum that made its block valid, and a
member that decided resends the proposal and precommits that decided it.
With n = 1 a producer's own signature is a quorum, which is why a proposer
proposes only a block its own ``validate`` accepts.
"""

from __future__ import annotations

import typing
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeAlias

from sagachain.core.block import Block, Vote
from sagachain.core.encoding import hash_value
from sagachain.core.keys import verify as ed25519_verify
from sagachain.core.wire import WireError, from_wire, register_codec, to_wire, wire_fields

NIL = b""  # the block hash of a vote for no block
WAITING = "waiting for what the block builds on"  # a verdict not yet made (see ``ready``)

PROPOSE, PREVOTE, PRECOMMIT = 0, 1, 2  # steps within a round


# -- messages -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    """The round's proposer puts ``block`` to the committee; ``signature`` is the proposer's."""

    shard: str
    height: int
    round: int
    block: Block
    valid_round: int  # -1 for a new block, else the round of the prevote quorum the proposer saw for it
    producer_vote: bytes  # the block producer's signature of block.hash: its part of the qc
    signature: bytes

    kind: ClassVar[str] = "proposal"

    def digest(self) -> bytes:
        return hash_value(["proposal", self.shard, self.height, self.round, self.block.hash, self.valid_round])


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundVote:
    """A vote of one phase of one round; the phase (``kind``) is in what is signed, so a
    prevote can never pass for a precommit, nor a vote of one round for another's."""

    shard: str
    height: int
    round: int
    block_hash: bytes
    signer: bytes
    signature: bytes

    kind: ClassVar[str] = ""

    def digest(self) -> bytes:
        return hash_value([self.kind, self.shard, self.height, self.round, self.block_hash])


@dataclass(frozen=True, slots=True, kw_only=True)
class Prevote(RoundVote):
    """``signer`` finds ``block_hash`` (NIL: none) acceptable in this round."""

    kind: ClassVar[str] = "prevote"


@dataclass(frozen=True, slots=True, kw_only=True)
class Precommit(RoundVote):
    """``signer`` saw a prevote quorum for ``block_hash`` in this round and locked it (NIL: did not)."""

    kind: ClassVar[str] = "precommit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """``signer`` decided ``block_hash``; ``signature`` signs exactly the hash: an SH-1 qc vote."""

    shard: str
    height: int
    block_hash: bytes
    signer: bytes
    signature: bytes

    kind: ClassVar[str] = "commit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """A final block, its qc complete: the answer to a member still working on its height."""

    shard: str
    block: Block

    kind: ClassVar[str] = "decision"


Message: TypeAlias = Proposal | Prevote | Precommit | Commit | Decision
MESSAGE_TYPES: dict[str, type] = {t.kind: t for t in (Proposal, Prevote, Precommit, Commit, Decision)}


def message_to_wire(message: Message) -> dict[str, Any]:
    """A message as a map tagged with its ``type``, ready for ``encode``; blocks as chain files store them."""
    return {"type": message.kind, **{name: to_wire(getattr(message, name)) for name in wire_fields(type(message))}}


def message_from_wire(data: Any, where: str = "message") -> Message:
    """Inverse of :func:`message_to_wire`; raises WireError on a bad shape."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise WireError(f"{where}: a message must be a map with a 'type' string")
    cls = MESSAGE_TYPES.get(data["type"])
    if cls is None:
        raise WireError(f"{where}: unknown message type {data['type']!r}; known: {sorted(MESSAGE_TYPES)}")
    return from_wire(cls, {k: v for k, v in data.items() if k != "type"}, f"{where}<{data['type']}>")  # type: ignore[no-any-return]


register_codec(Message, message_from_wire, message_to_wire, types=tuple(MESSAGE_TYPES.values()))


# -- actions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``message`` to every other committee member."""

    message: Message


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to one member (an answer to a member behind us)."""

    to: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class NeedBlock:
    """This member proposes in ``round`` and has no block yet: build one, then call ``propose``."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class Decided:
    """``block`` is final (SH-1): its qc holds a quorum of commit votes, the producer's among them."""

    block: Block


@dataclass(frozen=True, slots=True)
class Evidence:
    """``signer`` signed two different messages where an honest member signs one."""

    signer: bytes
    first: Message
    second: Message


@dataclass(frozen=True, slots=True)
class Refused:
    """A message (or a block from the driver) this member did not act on, and why."""

    reason: str
    message: Message | Block


@dataclass(frozen=True, slots=True)
class ScheduleTick:
    """Call ``tick`` at ``at`` (or later): a timeout or a resend falls due then."""

    at: int


Action: TypeAlias = Broadcast | Send | NeedBlock | Decided | Evidence | Refused | ScheduleTick


# -- configuration --------------------------------------------------------------------


class Signer(typing.Protocol):
    """What the machine needs of a key: ``KeyPair`` or the simulator's ``ModelledKey``."""

    public: bytes

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Durations in the driver's time unit. Each round waits ``increment`` longer than the
    one before, so that after a stormy period the rounds outgrow the network's delays."""

    propose: int = 300
    prevote: int = 200
    precommit: int = 200
    increment: int = 100
    resend: int = 400


MAX_ALTERNATIVES = 8  # second proposals kept per height: an equivocator cannot fill memory


def _always(block: Block) -> bool:
    return True


def quorum(n: int) -> int:
    """SH-1: more than two thirds of a committee of ``n``."""
    return 2 * n // 3 + 1


# -- the machine ----------------------------------------------------------------------


@dataclass
class _Tally:
    """One phase's votes at one height: round -> signer -> block hash -> vote.

    A signer has one vote per round unless it lies. Its second, different
    vote is still counted for that block (if the block is one we hold a
    proposal for, or nil, which keeps the table bounded): had we kept only
    the first, a liar could show half the committee one vote and the other
    half another, and a prevote quorum that others locked on would stay
    invisible to us forever. Counting a liar twice is harmless: any two
    quorums still share an honest member.
    """

    votes: dict[int, dict[bytes, dict[bytes, Prevote | Precommit]]] = field(default_factory=dict)

    def of(self, round_: int, signer: bytes) -> dict[bytes, Prevote | Precommit]:
        return self.votes.get(round_, {}).get(signer, {})

    def add(self, vote: Prevote | Precommit) -> None:
        self.votes.setdefault(vote.round, {}).setdefault(vote.signer, {})[vote.block_hash] = vote

    def count(self, round_: int, block_hash: bytes) -> int:
        return sum(block_hash in mine for mine in self.votes.get(round_, {}).values())

    def signers(self, round_: int) -> set[bytes]:
        return set(self.votes.get(round_, {}))

    def rounds(self) -> list[int]:
        return list(self.votes)

    def for_block(self, round_: int, block_hash: bytes) -> list[Prevote | Precommit]:
        return [mine[block_hash] for mine in self.votes.get(round_, {}).values() if block_hash in mine]

    def in_round(self, round_: int) -> list[Prevote | Precommit]:
        return [vote for mine in self.votes.get(round_, {}).values() for vote in mine.values()]


@dataclass
class _Height:
    """Everything a member knows about the height being decided; dropped when it is final."""

    round: int = 0
    step: int = PROPOSE
    locked: Block | None = None
    locked_round: int = -1
    valid: Block | None = None
    valid_round: int = -1
    proposals: dict[int, Proposal] = field(default_factory=dict)
    # Second proposals of an equivocating proposer, by block hash: never voted for, but a block
    # others decided on may be one of them, and a decision needs the block (bounded, see _on_proposal).
    alternatives: dict[bytes, Proposal] = field(default_factory=dict)
    prevotes: _Tally = field(default_factory=_Tally)
    precommits: _Tally = field(default_factory=_Tally)
    commits: dict[bytes, dict[bytes, bytes]] = field(default_factory=dict)  # block hash -> signer -> signature
    verdicts: dict[bytes, str | None] = field(default_factory=dict)  # validate() per block hash, asked once
    done: set[tuple[str, int]] = field(default_factory=set)  # "upon ... for the first time" rules fired, per round
    timers: list[tuple[int, str, int]] = field(default_factory=list)  # (deadline, kind, round)
    awaiting: int | None = None  # round whose block we asked the driver for
    sent: dict[int, list[Message]] = field(default_factory=dict)  # own messages per round, to resend
    decided: Block | None = None
    commit: Commit | None = None
    final: Block | None = None


@dataclass
class CommitteeMachine:
    """One member's consensus state for one shard; see the module docstring for the protocol.

    ``committee`` is the shard's committee in its on-chain order (the proposer
    rotation follows it); ``public_keys`` maps each member's node id to its
    key. ``validate`` is the driver's judgment of a block at this height
    (parent, rules, contents): a refusal reason, or None. ``ready`` says whether
    the driver can judge a block yet (the node may still be receiving the other
    shards' blocks it builds on): until then the member neither prevotes for
    it nor against it, and the propose timeout still bounds the wait.
    """

    shard: str
    committee: tuple[bytes, ...]
    public_keys: Mapping[bytes, bytes]
    node_id: bytes
    key: Signer
    validate: Callable[[Block], str | None]
    height: int = 1
    ready: Callable[[Block], bool] = _always  # whether the driver holds what ``block`` builds on, to judge it
    timeouts: Timeouts = field(default_factory=Timeouts)
    verify: Callable[[bytes, bytes, bytes], bool] = ed25519_verify
    round_window: int = 32  # rounds ahead of ours we keep votes for; farther ones are refused
    future_limit: int = 64  # messages kept per member for later heights
    history: int = 16  # final blocks kept to answer members behind
    _state: _Height = field(default_factory=_Height, init=False, repr=False)
    _future: dict[bytes, deque[Message]] = field(default_factory=dict, init=False, repr=False)
    _finals: dict[int, Block] = field(default_factory=dict, init=False, repr=False)
    _next_resend: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.node_id not in self.committee:
            raise ValueError("a committee machine runs on a committee member; node_id is not in the committee")
        if set(self.committee) - set(self.public_keys):
            raise ValueError("public_keys must hold the key of every committee member")

    @property
    def quorum(self) -> int:
        return quorum(len(self.committee))

    @property
    def faulty(self) -> int:
        """How many members may fail without harm: any more than this includes an honest one."""
        return len(self.committee) - self.quorum

    @property
    def round(self) -> int:
        return self._state.round

    def proposer(self, height: int, round_: int) -> bytes:
        return self.committee[(height + round_) % len(self.committee)]

    # -- events from the driver --------------------------------------------------------

    def start(self, now: int) -> list[Action]:
        """Begin work on ``self.height`` (call once, after construction)."""
        out: list[Action] = []
        self._next_resend = now + self.timeouts.resend
        out.append(ScheduleTick(self._next_resend))
        self._start_round(0, now, out)
        self._progress(now, out)
        return out

    def propose(self, block: Block, now: int) -> list[Action]:
        """The driver's answer to ``NeedBlock``: a block produced by this member."""
        st = self._state
        out: list[Action] = []
        if st.awaiting != st.round or st.step != PROPOSE or st.final is not None or block.height != self.height:
            out.append(Refused("the round this block was asked for is over", block))
            return out
        if block.header.producer != self.node_id:
            raise ValueError("propose() takes a block this member produced (header.producer is its node id)")
        st.awaiting = None
        reason = self._verdict(block)
        if reason is not None:
            out.append(Refused(f"own block refused by validate: {reason}", block))
            return out
        self._send_proposal(block, -1, out)
        self._progress(now, out)
        return out

    def receive(self, message: Message, now: int) -> list[Action]:
        """A message from the network (not yet checked in any way)."""
        out: list[Action] = []
        reason = self._screen(message, out)
        if reason is not None:
            out.append(Refused(reason, message))
            return out
        if self._state.final is None:
            self._progress(now, out)
        return out

    def tick(self, now: int) -> list[Action]:
        """Time has come to ``now``: fire the timeouts and the resend that are due."""
        st = self._state
        out: list[Action] = []
        due = sorted(t for t in st.timers if t[0] <= now)
        st.timers = [t for t in st.timers if t[0] > now]
        for _, kind, round_ in due:
            if st.final is not None or round_ != st.round:
                continue
            if kind == "propose" and st.step == PROPOSE:
                self._prevote(NIL, out)
            elif kind == "prevote" and st.step == PREVOTE:
                self._precommit(NIL, out)
            elif kind == "precommit" and st.decided is None:
                self._start_round(round_ + 1, now, out)
        if self._next_resend is not None and now >= self._next_resend:
            self._resend(out)
            self._next_resend = now + self.timeouts.resend
            out.append(ScheduleTick(self._next_resend))
        if st.final is None:
            self._progress(now, out)
        return out

    @property
    def wants_block(self) -> bool:
        """This member proposes the current round and still waits for the driver's block
        (a ``NeedBlock`` not yet answered, nor overtaken by a timeout)."""
        st = self._state
        return st.final is None and st.awaiting == st.round and st.step == PROPOSE

    @property
    def busy(self) -> bool:
        """Another member has spoken at this height: a proposal or a vote is here."""
        st = self._state
        voters = {s for tally in (st.prevotes, st.precommits) for r in tally.rounds() for s in tally.signers(r)}
        return bool(st.proposals) or bool(voters - {self.node_id})

    def wake(self, now: int) -> list[Action]:
        """The driver stopped ticking while its shard had nothing to do; restart the current
        round's propose timer from ``now``, so an idle spell does not count as a silent
        proposer. The prevote and precommit timers stay: they started on votes received, so
        they time a round already under way, and dropping them would leave a round whose
        votes are all in (a nil quorum after a refused proposal) waiting for ever.
        Timeouts only pace liveness: moving them never touches what the member signs."""
        st = self._state
        out: list[Action] = []
        st.timers = [t for t in st.timers if t[1] != "propose"]
        for at, _, _ in st.timers:
            out.append(ScheduleTick(at))
        if st.final is None and st.decided is None:
            self._schedule(now + self.timeouts.propose + st.round * self.timeouts.increment, "propose", st.round, out)
        self._next_resend = now + self.timeouts.resend
        out.append(ScheduleTick(self._next_resend))
        if st.awaiting == st.round and st.step == PROPOSE:
            out.append(NeedBlock(self.height, st.round))
        return out

    def next_height(self, block: Block, now: int) -> list[Action]:
        """The driver stored ``block``, final at this member's height or later (block sync):
        work on the height after it, starting with the messages that waited for it."""
        if block.shard != self.shard or block.height < self.height:
            raise ValueError(f"next_height needs a final block of shard {self.shard} at height {self.height} or later")
        self._finals[block.height] = block
        for old in [h for h in self._finals if h <= block.height - self.history]:
            del self._finals[old]
        self.height = block.height + 1
        self._state = _Height()
        out: list[Action] = []
        self._start_round(0, now, out)
        waiting = [m for queue in self._future.values() for m in queue]
        self._future = {}
        for message in waiting:
            out.extend(self.receive(message, now))
        self._progress(now, out)
        return out

    # -- screening incoming messages ------------------------------------------------------

    def _screen(self, message: Message, out: list[Action]) -> str | None:
        """Check and store one message; the reason it is refused, or None when taken."""
        if message.shard != self.shard:
            return f"for shard {message.shard}, not {self.shard}"
        if isinstance(message, Decision):
            return self._on_decision(message.block, out)
        signer = self._signer_of(message)
        if signer not in self.committee:
            return "signer is not a member of the committee"
        if message.height < self.height:
            old = self._finals.get(message.height)
            if old is not None and signer != self.node_id:
                out.append(Send(signer, Decision(shard=self.shard, block=old)))
            return f"height {message.height} is already final here (at {self.height})"
        if message.height > self.height:
            return self._buffer(signer, message)
        st = self._state
        if st.final is not None:
            if not isinstance(message, Commit) and signer != self.node_id:
                out.append(Send(signer, Decision(shard=self.shard, block=st.final)))
            return "this height is already final here"
        if isinstance(message, Commit):
            return self._on_commit(message)
        if message.round > st.round + self.round_window:
            return f"round {message.round} is too far ahead of ours ({st.round})"
        if isinstance(message, Proposal):
            return self._on_proposal(message, out)
        return self._on_vote(message, out)

    def _signer_of(self, message: Proposal | Prevote | Precommit | Commit) -> bytes:
        if isinstance(message, Proposal):
            return self.proposer(message.height, message.round)
        return message.signer

    def _buffer(self, signer: bytes, message: Message) -> str | None:
        """Keep a message for a later height, if it is signed by the member it names
        (so no one can crowd out another member's messages)."""
        if not self._signed(message):
            return "bad signature"
        queue = self._future.setdefault(signer, deque(maxlen=self.future_limit))
        queue.append(message)
        return None

    def _signed(self, message: Proposal | Prevote | Precommit | Commit) -> bool:
        key = self.public_keys[self._signer_of(message)]
        if isinstance(message, Commit):
            return self.verify(key, message.block_hash, message.signature)
        return self.verify(key, message.digest(), message.signature)

    def _on_proposal(self, proposal: Proposal, out: list[Action]) -> str | None:
        st = self._state
        proposer = self.proposer(proposal.height, proposal.round)
        first = st.proposals.get(proposal.round)
        if first == proposal:
            return "duplicate"
        if not self._signed(proposal):
            return "bad signature"
        if first is not None and first.digest() == proposal.digest():
            return "duplicate"
        block = proposal.block
        producer = block.header.producer
        if block.shard != self.shard or block.height != self.height:
            return f"block is for {block.shard} at height {block.height}, not {self.shard} at {self.height}"
        if not -1 <= proposal.valid_round < proposal.round:
            return f"valid_round {proposal.valid_round} is not below the round {proposal.round}"
        if producer not in self.committee or not self.verify(self.public_keys[producer], block.hash, proposal.producer_vote):
            return "the block's producer did not sign it"
        if first is not None:
            out.append(Evidence(proposer, first, proposal))
            if len(st.alternatives) < MAX_ALTERNATIVES and block.hash != first.block.hash:
                st.alternatives.setdefault(block.hash, proposal)
            return "a second, different proposal for this round (equivocation)"
        st.proposals[proposal.round] = proposal
        st.commits.setdefault(block.hash, {})[producer] = proposal.producer_vote
        return None

    def _on_vote(self, vote: Prevote | Precommit, out: list[Action]) -> str | None:
        st = self._state
        tally = st.prevotes if isinstance(vote, Prevote) else st.precommits
        mine = tally.of(vote.round, vote.signer)
        if vote.block_hash in mine:
            return "duplicate"
        if not self._signed(vote):
            return "bad signature"
        tally.add(vote)
        if mine:
            out.append(Evidence(vote.signer, next(iter(mine.values())), vote))
            proposed = vote.block_hash in st.alternatives or any(p.block.hash == vote.block_hash for p in st.proposals.values())
            if vote.block_hash != NIL and not proposed:
                del tally.votes[vote.round][vote.signer][vote.block_hash]
                return f"a second, different {vote.kind} in this round (equivocation), for a block not proposed here"
        return None

    def _on_commit(self, commit: Commit) -> str | None:
        """Keep a commit vote. Before the decision, at most two block hashes per member are
        kept (a liar may relay an honest producer's vote for its own block as a commit);
        the decided block's votes are always kept, and members resend theirs."""
        st = self._state
        votes = st.commits.get(commit.block_hash, {})
        if votes.get(commit.signer) == commit.signature:
            return "duplicate"
        if not self._signed(commit):
            return "bad signature"
        if st.decided is not None and commit.block_hash != st.decided.hash:
            return "commit for a block other than the decided one"
        if st.decided is None and sum(commit.signer in v for v in st.commits.values()) >= 2:
            return "this member's commits already name two blocks"
        st.commits.setdefault(commit.block_hash, {})[commit.signer] = commit.signature
        return None

    def _on_decision(self, block: Block, out: list[Action]) -> str | None:
        st = self._state
        if block.shard != self.shard or block.height != self.height:
            return f"decision for height {block.height}; this member works on {self.height}"
        if st.final is not None:
            return "this height is already final here"
        problem = self._qc_problem(block)
        if problem is not None:
            return problem
        if st.decided is not None and st.decided.hash != block.hash:
            return "certificate for a block other than the one decided here (more than f members lie)"
        st.decided = st.decided or replace(block, qc=())
        for vote in block.qc:
            st.commits.setdefault(block.hash, {})[vote.signer] = vote.signature
        self._finish(out)
        return None

    def _qc_problem(self, block: Block) -> str | None:
        """Why ``block.qc`` is not an SH-1 certificate for this committee, or None."""
        signers: set[bytes] = set()
        for vote in block.qc:
            if vote.signer not in self.committee or vote.signer in signers:
                return "qc names a non-member or a member twice"
            if not self.verify(self.public_keys[vote.signer], block.hash, vote.signature):
                return "qc holds a bad signature"
            signers.add(vote.signer)
        if len(signers) < self.quorum or block.header.producer not in signers:
            return f"qc has {len(signers)} of {self.quorum} votes needed, the producer's among them"
        return None

    # -- the rules ------------------------------------------------------------------------

    def _progress(self, now: int, out: list[Action]) -> None:
        """Apply every rule whose condition holds, until none does."""
        st = self._state
        while st.final is None:
            before = (st.round, st.step, st.decided is not None, len(st.done))
            self._rules(now, out)
            if (st.round, st.step, st.decided is not None, len(st.done)) == before:
                return

    def _rules(self, now: int, out: list[Action]) -> None:
        st = self._state
        q = self.quorum
        if st.decided is None:
            known = {p.block.hash: p.block for p in (*st.proposals.values(), *st.alternatives.values())}
            for round_ in st.precommits.rounds():
                for block_hash, block in known.items():
                    if st.precommits.count(round_, block_hash) >= q and self._verdict(block) is None:
                        self._decide(block, out)
                        return
            self._skip_rounds(now, out)
        else:
            self._finish(out)
            return
        r = st.round
        proposal = st.proposals.get(r)
        if st.step == PROPOSE and proposal is not None:
            block, vr = proposal.block, proposal.valid_round
            verdict = self._verdict(block)
            fits = verdict is None
            if verdict is WAITING:
                pass  # judged once the driver has what it builds on, or prevoted nil at the timeout
            elif vr == -1:
                self._prevote(block.hash if fits and (st.locked_round == -1 or self._is_locked(block)) else NIL, out)
            elif st.prevotes.count(vr, block.hash) >= q:
                self._prevote(block.hash if fits and (st.locked_round <= vr or self._is_locked(block)) else NIL, out)
        if st.step >= PREVOTE and proposal is not None and ("polka", r) not in st.done:
            block = proposal.block
            if st.prevotes.count(r, block.hash) >= q and self._verdict(block) is None:
                st.done.add(("polka", r))
                if st.step == PREVOTE:
                    st.locked, st.locked_round = block, r
                    self._precommit(block.hash, out)
                st.valid, st.valid_round = block, r
        if st.step == PREVOTE and st.prevotes.count(r, NIL) >= q:
            self._precommit(NIL, out)
        if st.step == PREVOTE and len(st.prevotes.signers(r)) >= q and ("prevote-timer", r) not in st.done:
            st.done.add(("prevote-timer", r))
            self._schedule(now + self.timeouts.prevote + r * self.timeouts.increment, "prevote", r, out)
        if len(st.precommits.signers(r)) >= q and ("precommit-timer", r) not in st.done:
            st.done.add(("precommit-timer", r))
            self._schedule(now + self.timeouts.precommit + r * self.timeouts.increment, "precommit", r, out)

    def _skip_rounds(self, now: int, out: list[Action]) -> None:
        """More than f members already in a later round: at least one honest one is, so go there."""
        st = self._state
        ahead: dict[int, set[bytes]] = {}
        for tally in (st.prevotes, st.precommits):
            for round_ in tally.rounds():
                if round_ > st.round:
                    ahead.setdefault(round_, set()).update(tally.signers(round_))
        for round_, proposal in st.proposals.items():
            if round_ > st.round:
                ahead.setdefault(round_, set()).add(self.proposer(self.height, round_))
        later = [r for r, signers in ahead.items() if len(signers) > self.faulty]
        if later:
            self._start_round(max(later), now, out)

    def _is_locked(self, block: Block) -> bool:
        return self._state.locked is not None and self._state.locked.hash == block.hash

    def _verdict(self, block: Block) -> str | None:
        verdicts = self._state.verdicts
        if block.hash not in verdicts:
            if not self.ready(block):
                return WAITING  # asked again at the next event; a judgment is only cached once made
            verdicts[block.hash] = self.validate(block)
        return verdicts[block.hash]

    # -- what the member does -------------------------------------------------------------

    def _start_round(self, round_: int, now: int, out: list[Action]) -> None:
        st = self._state
        st.round, st.step, st.awaiting = round_, PROPOSE, None
        if self.proposer(self.height, round_) == self.node_id:
            if st.valid is not None:
                self._send_proposal(st.valid, st.valid_round, out)
            else:
                st.awaiting = round_
                out.append(NeedBlock(self.height, round_))
        self._schedule(now + self.timeouts.propose + round_ * self.timeouts.increment, "propose", round_, out)

    def _send_proposal(self, block: Block, valid_round: int, out: list[Action]) -> None:
        st = self._state
        if valid_round == -1:
            producer_vote = self.key.sign(block.hash)
        else:
            producer_vote = st.commits[block.hash][block.header.producer]  # kept since its proposal came
        proposal = Proposal(shard=self.shard, height=self.height, round=st.round, block=block,
                            valid_round=valid_round, producer_vote=producer_vote, signature=b"")
        proposal = replace(proposal, signature=self.key.sign(proposal.digest()))
        st.proposals[st.round] = proposal
        st.commits.setdefault(block.hash, {})[block.header.producer] = producer_vote
        self._emit(st.round, proposal, out)
        if valid_round >= 0:  # members that missed the prevote quorum behind the block need it to prevote
            for vote in st.prevotes.for_block(valid_round, block.hash):
                self._emit(st.round, vote, out)

    def _prevote(self, block_hash: bytes, out: list[Action]) -> None:
        st = self._state
        vote = Prevote(shard=self.shard, height=self.height, round=st.round, block_hash=block_hash, signer=self.node_id, signature=b"")
        vote = replace(vote, signature=self.key.sign(vote.digest()))
        st.prevotes.add(vote)
        st.step = PREVOTE
        self._emit(st.round, vote, out)

    def _precommit(self, block_hash: bytes, out: list[Action]) -> None:
        st = self._state
        vote = Precommit(shard=self.shard, height=self.height, round=st.round, block_hash=block_hash, signer=self.node_id, signature=b"")
        vote = replace(vote, signature=self.key.sign(vote.digest()))
        st.precommits.add(vote)
        st.step = PRECOMMIT
        self._emit(st.round, vote, out)

    def _decide(self, block: Block, out: list[Action]) -> None:
        """The decision is irrevocable; only now does this member sign the bare block hash."""
        st = self._state
        st.decided = block
        st.commit = Commit(shard=self.shard, height=self.height, block_hash=block.hash, signer=self.node_id, signature=self.key.sign(block.hash))
        st.commits.setdefault(block.hash, {})[self.node_id] = st.commit.signature
        out.append(Broadcast(st.commit))
        self._finish(out)

    def _finish(self, out: list[Action]) -> None:
        """Report the decided block as final once its qc is complete."""
        st = self._state
        block = st.decided
        if block is None or st.final is not None:
            return
        votes = st.commits.get(block.hash, {})
        if len(votes) < self.quorum or block.header.producer not in votes:
            return
        qc = tuple(Vote(signer=m, signature=votes[m]) for m in self.committee if m in votes)
        st.final = replace(block, qc=qc)
        st.timers = []
        out.append(Decided(st.final))

    def _schedule(self, at: int, kind: str, round_: int, out: list[Action]) -> None:
        self._state.timers.append((at, kind, round_))
        out.append(ScheduleTick(at))

    def _emit(self, round_: int, message: Message, out: list[Action]) -> None:
        self._state.sent.setdefault(round_, []).append(message)
        out.append(Broadcast(message))

    def _resend(self, out: list[Action]) -> None:
        """Messages get lost: send again this height's own messages of the last two rounds and
        the precommits of the last round (relayed), and once decided the commit with what proves the decision (the deciding round's
        proposal and precommits), so that a member that missed them can decide too."""
        st = self._state
        if st.final is not None:
            return
        if st.decided is not None and st.commit is not None:
            out.append(Broadcast(st.commit))
            proposal = next((p for p in (*st.proposals.values(), *st.alternatives.values()) if p.block.hash == st.decided.hash), None)
            for round_ in st.precommits.rounds():
                proof = st.precommits.for_block(round_, st.decided.hash)
                if proposal is not None and len(proof) >= self.quorum:
                    out.append(Broadcast(proposal))
                    out.extend(Broadcast(v) for v in proof)
                    break
            return
        for round_ in (st.round - 1, st.round):
            out.extend(Broadcast(m) for m in st.sent.get(round_, ()))
        # Relay the precommits that moved us past the last round: some may come from members that
        # crashed since, and a member still in that round needs them to move on too.
        out.extend(Broadcast(v) for v in st.precommits.in_round(st.round - 1) if v.signer != self.node_id)
