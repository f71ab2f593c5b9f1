"""What the chaos soak expects of the index: each document's possible states, and the text that must be gone.

Every generated document holds one version of its content at a time, and
each version has marker words of its own: a made-up Chinese name and a Latin
token (``QX`` + 6 digits). A change answered as done leaves one possible
state; a change whose answer never came (the server was killed) leaves two,
the state before and the state after, and the next restart must show one of
them whole. What a change removed (a deleted document, a replaced version)
must be gone from answers, and when the change was answered as done, from
every file under the data directory too.
"""

from __future__ import annotations

import random
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from index.ingest.documents import doc_id_for

TOKEN = re.compile(r"QX\d{6}")
# Characters rare in policy texts, so that a name is found only where its document put it.
SURNAMES = "甄禤鞠訾蓟麴璩巩逯隗"
GIVEN = "珏璇瑀琮玙璟琤珺瑢琬璠琇玳珣瑷璘琰琨瑄玮"
ABSENT, TORN = None, "torn"  # observed states beside a token: not listed; listed without exactly one token


@dataclass
class Version:
    """One content of a document: its marker words are nowhere else."""

    name: str
    token: str

    @property
    def needles(self) -> list[str]:
        return [self.name, self.token]

    def text(self, number: int) -> str:
        return (
            f"天文观测记录第{number}号\n一、观测情况\n观测员{self.name}，观测编号{self.token}，在北山观测站完成了"
            f"一次双星观测，记录了亮度变化。\n二、记录保存\n{self.name}的观测记录按编号{self.token}归档，"
            "由观测站资料室保存三年。\n"
        )


class Versions:
    """Fresh, unique versions from a seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def new(self) -> Version:
        while True:
            name = self.rng.choice(SURNAMES) + "".join(self.rng.sample(GIVEN, 2))
            token = f"QX{self.rng.randrange(10**6):06d}"
            if name not in self.used and token not in self.used:
                self.used.update((name, token))
                return Version(name, token)


@dataclass
class Tracked:
    """A generated document: its versions, oldest first, and the states it may be in now."""

    doc_id: str
    filename: str
    number: int
    versions: list[Version] = field(default_factory=list)
    possible: set[str | None] = field(default_factory=lambda: {ABSENT})  # tokens, or ABSENT
    pending: tuple[str | None, str | None] | None = None  # (before, after) of a change not answered yet
    deleted: bool = False  # a delete landed: it must never come back

    def version(self, token: str | None) -> Version | None:
        return next((v for v in self.versions if v.token == token), None)

    @property
    def certain(self) -> str | None:
        """The one state it is in (a token or ABSENT); only call when there is one."""
        (state,) = self.possible
        return state

    @property
    def live(self) -> bool:
        return len(self.possible) == 1 and self.certain is not ABSENT


@dataclass
class Retired:
    """A version no longer served: deleted or replaced away, by a change answered as done or not."""

    version: Version
    doc_id: str
    acknowledged: bool
    landed: bool = True  # False: the version of an unanswered change that never landed (never served)


class Ledger:
    """Every generated document and retired version; a change is told before it is sent and when answered."""

    def __init__(self) -> None:
        self.documents: dict[str, Tracked] = {}
        self.retired: dict[str, Retired] = {}  # by token
        self.acknowledged = 0
        self.unacknowledged = 0
        self.landed_unacknowledged = 0

    def new_document(self, number: int, suffix: str) -> Tracked:
        filename = f"chaos-{number:04d}-{suffix}.txt"
        document = Tracked(doc_id_for(filename), filename, number)
        self.documents[document.doc_id] = document
        return document

    def live(self) -> list[Tracked]:
        return [d for d in self.documents.values() if d.live]

    # -- a change: sent, then answered or not ---------------------------------
    def sent(self, document: Tracked, version: Version | None) -> None:
        """Before the request: from now on the document may be in the new state (or still the old one)."""
        if version is not None:
            document.versions.append(version)
        before, after = document.certain, _state(version)
        document.pending = (before, after)
        document.possible = {before, after}

    def answered(self, document: Tracked) -> None:
        """The change was answered as done: its new state is the only one."""
        self.acknowledged += 1
        self._settle(document, document.pending[1], retire_acknowledged=True)

    def unanswered(self) -> None:
        self.unacknowledged += 1

    # -- a restart: what is there --------------------------------------------
    def observe(self, document: Tracked, state: str | None) -> str | None:
        """Settle the document on what a restart shows; returns the fault found, if any: ``resurrected``
        (a deleted document back), ``lost`` (a state answered as done is not there) or ``torn`` (a change
        not all or nothing: a text without exactly one version, or an add seen absent that came later)."""
        if state == TORN:
            return "torn"
        if state not in document.possible:
            fault = "resurrected" if document.deleted else "torn" if document.possible == {ABSENT} else "lost"
            document.possible, document.pending = {state}, None  # each fault is counted once
            return fault
        if document.pending is not None:  # an unanswered change: which side it landed on
            self.landed_unacknowledged += state == document.pending[1]
            self._settle(document, state, retire_acknowledged=False)
        return None

    def _settle(self, document: Tracked, state: str | None, *, retire_acknowledged: bool) -> None:
        before, after = document.pending
        landed = state == after
        if landed and before is not ABSENT:
            self.retired[before] = Retired(document.version(before), document.doc_id, retire_acknowledged)
        if not landed and after is not ABSENT:
            self.retired[after] = Retired(document.version(after), document.doc_id, False, landed=False)
        document.deleted = document.deleted or (landed and after is ABSENT)
        document.possible, document.pending = {state}, None


def _state(version: Version | None) -> str | None:
    return version.token if version is not None else ABSENT


def observed_state(listed: bool, text: str | None) -> str | None:
    """ABSENT, the one token the text holds, or TORN."""
    if not listed:
        return ABSENT
    tokens = set(TOKEN.findall(text or ""))
    return tokens.pop() if len(tokens) == 1 else TORN


def traces(root: Path, needles: Iterable[str]) -> dict[str, str]:
    """Needle -> the first file under ``root`` holding it (zip members such as .npz arrays opened), as UTF-8
    or UTF-32-LE (numpy's strings), Latin words lower-cased too (the BM25 vocabulary keeps them so)."""
    forms = {}
    for needle in needles:
        for variant in {needle, needle.lower()}:
            forms[variant.encode("utf-8")] = needle
            forms[variant.encode("utf-32-le")] = needle
    found: dict[str, str] = {}
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        try:
            blobs = [path.read_bytes()]
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    blobs += [archive.read(name) for name in archive.namelist()]
        except (OSError, zipfile.BadZipFile):  # removed or rewritten while read: the next scan sees it
            continue
        for form, needle in forms.items():
            if needle not in found and any(form in blob for blob in blobs):
                found[needle] = str(path.relative_to(root))
    return found
