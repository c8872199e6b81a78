"""The story engine: the one join-or-new loop, over typed records, with storage behind
:class:`~etl.stories.repository.StoryRepository`. The pipeline runs it on PostgreSQL
(``etl.stories.postgres``), the dev-set evaluation and the model's training on memory
(``etl.stories.memory``): the numbers that guide the work come from the loop production runs.

For each article of a batch, in processing order (event time, then id):

1. **Near-duplicate** (``etl.stories.dedup``): a copy gets ``duplicate_of`` → the earliest
   original and joins the original's story with relation ``near_duplicate`` (method ``minhash``).
2. **Attribution** (``etl.stories.attribution``): cues such as "según la VOA" or "(AFP)" become
   citations. When a cited outlet has an article in a story of the window and the model's
   probability for that story clears the *lower* attribution bar (``cites_probability``), it
   joins with relation ``cites`` (method ``attribution``).
3. **Story match** (``etl.stories.matcher``): the candidate stories are compared with the
   article through their profiles; the most probable one is joined at the model's bar
   (relation ``same_story``); otherwise the article opens a new story (relation ``original``).
4. **Merges**: at the end of the batch, each story that grew is compared with the others of its
   window like an article; one that converged is folded into the older story.

The engine keeps the window state (``etl.stories.window``) from batch to batch: one engine per
repository, one batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from etl.config import StoryConfig
from etl.models import AssignCounts, MatchMethod, Relation
from etl.stories import attribution, dedup
from etl.stories.matcher import Matcher
from etl.stories.model import JoinModels, load_models
from etl.stories.profile import Item, Profile
from etl.stories.reach import Reach, reach_names
from etl.stories.repository import (
    BatchWrites,
    Membership,
    Placement,
    Prepared,
    StoryLink,
    StoryRepository,
)
from etl.stories.window import WindowState


def _follow_merges(links: Iterable[StoryLink], merges: Sequence[tuple[int, int]]) -> list[StoryLink]:
    """The batch's links with its merged stories replaced by their survivors (a link inside
    one story is dropped; of two links between the same stories, the closer is kept)."""
    into = dict(merges)

    def final(sid: int) -> int:
        while sid in into:
            sid = into[sid]
        return sid

    out: dict[tuple[int, int], StoryLink] = {}
    for link in links:
        a, b = final(link.story_id), final(link.related_id)
        if a == b:
            continue
        key = (max(a, b), min(a, b))
        if key not in out or link.score > out[key].score:
            out[key] = StoryLink(key[0], key[1], link.kind, link.score)
    return [out[k] for k in sorted(out)]


def prepare(item: Item) -> Prepared:
    """The article's MinHash bands beside its features: the part of the work that needs no
    other article, done before the story lock is taken."""
    return Prepared(item, dedup.bands_for(item.body))


@dataclass
class StepResult:
    """What one batch decided."""

    placements: list[Placement] = field(default_factory=list)
    merges: list[tuple[int, int]] = field(default_factory=list)
    links: list[StoryLink] = field(default_factory=list)
    counts: AssignCounts = field(default_factory=AssignCounts)


class _Pending:
    """The batch's memberships, written with the batch (one statement: the warehouse's
    membership trigger fires once). Reads of a membership go through here: a pending one
    answers for itself, a stored one is asked of the repository."""

    def __init__(self, repo: StoryRepository) -> None:
        self.repo = repo
        self.rows: dict[int, list] = {}                 # article id -> [story, relation, score, method]
        self.when: dict[int, tuple[datetime, int]] = {}  # article id -> (time, source)
        self.new_stories: list[tuple[int, str | None, datetime]] = []
        self.opened: set[int] = set()                   # articles that opened their story

    def new_story(self, title: str | None, t: datetime, upper_bound: int) -> int:
        story_id = self.repo.new_story_id(upper_bound)
        self.new_stories.append((story_id, title, t))
        return story_id

    def add(self, art: Item, story_id: int, relation: Relation, score: float | None,
            method: MatchMethod | None) -> None:
        self.rows[art.id] = [story_id, relation, score, method]
        self.when[art.id] = (art.time, art.source_id)

    def of(self, article_id: int) -> Membership | None:
        row = self.rows.get(article_id)
        if row is not None:
            return Membership(row[0], row[1], row[2], row[3])
        return self.repo.membership(article_id)

    def demote(self, article_id: int, score: float) -> None:
        """The old original becomes a near-duplicate of the article that took its place."""
        row = self.rows.get(article_id)
        if row is not None:
            row[1], row[2], row[3] = Relation.NEAR_DUPLICATE, score, MatchMethod.MINHASH
        else:
            self.repo.demote(article_id, score)

    def first_of_outlet(self, story_id: int, source_id: int, me: int) -> int | None:
        """The outlet's earliest article in the story (stored or of this batch), not ``me``."""
        best = self.repo.first_of_outlet(story_id, source_id, me)
        for aid, row in self.rows.items():
            t, src = self.when[aid]
            if row[0] == story_id and src == source_id and aid != me and (best is None or (t, aid) < best):
                best = (t, aid)
        return best[1] if best is not None else None

    def memberships(self) -> list[tuple[int, Membership]]:
        return [(aid, Membership(r[0], Relation(r[1]), r[2], MatchMethod(r[3]) if r[3] is not None else None))
                for aid, r in self.rows.items()]


class StoryEngine:
    """``step`` places one batch of prepared articles (in processing order) into stories,
    reading and writing through a repository; the window state is carried to the next batch."""

    def __init__(self, cfg: StoryConfig, models: JoinModels | None = None) -> None:
        self.cfg = cfg
        self.models = models if models is not None else load_models()
        self.state = WindowState()
        # passed to each batch's matcher (training on the stream's own decisions)
        self.observe: Callable[[Item, Sequence[Profile], np.ndarray], None] | None = None

    def step(self, repo: StoryRepository, arts: Sequence[Prepared]) -> StepResult:
        result = StepResult()
        if not arts:
            return result
        cfg, counts = self.cfg, result.counts
        items = [a.item for a in arts]
        window = timedelta(hours=cfg.window_hours)
        profiles = repo.window(items[0].time - window, items[-1].time + window)
        matcher = Matcher(profiles, cfg, self.models, state=self.state,
                          languages=[it.language for it in items if it.language])
        matcher.observe = self.observe
        matcher.reach = self._reach(repo, items, matcher)
        outlets = repo.outlets()
        touched: set[int] = set()
        grown: set[int] = set()
        links: dict[tuple[int, int], StoryLink] = {}
        probe = dedup.BatchProbe()
        probe.load(repo.band_hits([(a.item.id, a.bands) for a in arts if a.bands], dedup.MAX_CANDIDATES))
        pending = _Pending(repo)
        citations: list[dict[str, object]] = []
        for k, prepared in enumerate(arts):
            art, bands = prepared.item, prepared.bands
            counts.processed += 1
            story_id: int | None = None
            relation, method, sim = Relation.ORIGINAL, None, None
            cited_article: dict[str, int] = {}

            # 1. near-duplicate of a stored article (or of one earlier in the batch) → the original's story
            near = dedup.confirm(repo, art.body, probe.candidates(art.id, bands)) if bands else None
            took_over = False
            if near is not None:
                counts.near_duplicates += 1
                member = pending.of(near.original_id)
                if (art.time, art.id) < (near.original_time, near.original_id):
                    # published before the stored "original": this one is the original, and it
                    # takes over the old original's place in the story
                    repo.make_original(art.id, near.original_id)
                    if member is not None:
                        pending.demote(near.original_id, near.score)
                        story_id, relation, sim, method = member.story_id, member.relation, member.score, member.method
                        took_over = True
                else:
                    repo.mark_duplicate(art.id, near.original_id)
                    if member is not None:
                        story_id, relation, method, sim = (member.story_id, Relation.NEAR_DUPLICATE,
                                                           MatchMethod.MINHASH, near.score)
                if story_id is not None and story_id not in profiles:
                    for p in repo.stories([story_id]).values():
                        matcher.track(p)

            # 2. attribution cues (recorded whatever happens next)
            cites = attribution.find_citations(
                "\n".join(x for x in (art.title, art.description, art.body) if x), outlets, art.source_id)
            active = matcher.active(art)
            decided = None
            if story_id is None:
                decided = matcher.decide(art, active + matcher.reach_candidates(art))
                cited_sources = {c.outlet.source_id for c in cites if c.outlet.source_id is not None}
                if decided.story_id is not None:
                    story_id, relation, sim, method = decided.story_id, Relation.SAME_STORY, decided.score, decided.method
                elif active and cited_sources:
                    # the most probable story that holds an article of a cited outlet, at the
                    # lower bar: an outlet saying it reports another's story is evidence too
                    cited = [p for p in active if p.source_ids & cited_sources]
                    prob = matcher.probabilities(art, cited)
                    if len(prob):
                        k = int(np.argmax(prob))
                        if prob[k] >= cfg.cites_probability:
                            story_id, relation, sim, method = (cited[k].story_id, Relation.CITES, float(prob[k]),
                                                               MatchMethod.ATTRIBUTION)
            if story_id is not None and relation != Relation.ORIGINAL:
                for c in cites:
                    if c.outlet.source_id is None:
                        continue
                    aid = pending.first_of_outlet(story_id, c.outlet.source_id, art.id)
                    if aid is not None:
                        cited_article[c.outlet.name] = aid
            citations.extend({"a": art.id, "name": c.outlet.name, "src": c.outlet.source_id,
                              "cited": cited_article.get(c.outlet.name), "cue": c.cue[:200]} for c in cites)
            counts.citations += len(cites)

            # 3. join or open a story
            if story_id is None:
                story_id = pending.new_story(art.title, art.time, len(arts) - k)
                matcher.open(story_id, art)
                pending.opened.add(art.id)
                counts.stories_new += 1
            else:
                if relation != Relation.NEAR_DUPLICATE and not took_over:
                    counts.stories_joined += 1
                # a copy adds no new evidence: counting its words twice would tilt the profile
                matcher.add(story_id, art, profile_too=relation != Relation.NEAR_DUPLICATE and not took_over)
            pending.add(art, story_id, relation, sim, method)
            if decided is not None:
                self._link(links, art, story_id, decided.near, matcher)
            touched.add(story_id)
            if relation in (Relation.SAME_STORY, Relation.CITES):
                grown.add(story_id)

        # 4. stories that grew in this batch: has one converged with another?
        merges = matcher.merge_converged(grown)
        for gone, into in merges:
            touched.discard(gone)
            touched.add(into)
            counts.stories_merged += 1
        members = pending.memberships()
        kept = _follow_merges(links.values(), merges)
        counts.links += len(kept)
        repo.commit(BatchWrites(
            new_stories=pending.new_stories, members=members, bands=probe.bands, citations=citations,
            merges=merges, links=kept, assigned=[a.id for a in items],
            profiles=[profiles[sid] for sid in sorted(touched)], touched=sorted(touched)))
        result.placements = [Placement(aid, m.story_id, m.relation, m.score, m.method, aid in pending.opened)
                             for aid, m in members]
        result.merges = merges
        result.links = kept
        return result

    def _link(self, links: dict[tuple[int, int], StoryLink], art: Item, story_id: int,
              near: Sequence[tuple[int, float]], matcher: Matcher) -> None:
        """Related, not merged: the candidate stories the article did not join that the model
        still found close (``cfg.link_probability``) are linked to the article's story — a
        follow-up when the other story had gone quiet before the article."""
        for other, prob in near:
            if other == story_id or prob < self.cfg.link_probability:
                continue
            p = matcher.profiles.get(other) or (matcher.reach.profiles.get(other) if matcher.reach else None)
            quiet = p is not None and art.time - p.last > timedelta(hours=self.cfg.follow_up_hours)
            key = (max(story_id, other), min(story_id, other))
            old = links.get(key)
            if old is None or prob > old.score:
                links[key] = StoryLink(key[0], key[1], "follow_up" if quiet else "related", round(prob, 4))

    def _reach(self, repo: StoryRepository, items: Sequence[Item], matcher: Matcher) -> Reach | None:
        """The long reach of a batch (:class:`etl.stories.reach.Reach`): the stories of the
        rarity horizon (``cfg.reach_horizon_days``) before the batch's window that hold one of
        its rare names — found by name (``repo.older_with_names``), never by loading the span:
        names common in the language or held by more than ``reach_max_stories`` stories of the
        window are not looked up, and each name stops at its cap + 1 stories (then it is not
        rare). Those that ended within ``cfg.reach_days`` are the candidates."""
        cfg = self.cfg
        if cfg.reach_days <= 0 or not items:
            return None
        caps: dict[str, int] = {}
        for art in items:
            for e in reach_names(art):
                if e not in caps:
                    caps[e] = cfg.reach_max_stories - len(matcher.index.entities.get(e, ()))
        keys = {k: cap for k, cap in sorted(caps.items()) if cap > 0}
        if not keys:
            return Reach({}, {})
        horizon = timedelta(days=max(cfg.reach_days, cfg.reach_horizon_days))
        hits = repo.older_with_names(keys, items[0].time - horizon, items[0].time - timedelta(hours=cfg.window_hours))
        ids = sorted({sid for k, sids in hits.items() if len(sids) <= caps[k] for sid in sids} - matcher.profiles.keys())
        return Reach(repo.stories(ids) if ids else {}, {k: len(sids) for k, sids in hits.items()})
